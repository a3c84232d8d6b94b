//! The customers' own commands and each number's access policy (issue 17, item 7; reference
//! 001), which the host runs before any policy, on every channel.
//!
//! - `/login you@example.com` mails a six-digit code; `/login 123456` proves the email (the code
//!   works for [`CODE_TTL_MS`] and [`MAX_TRIES`] tries; a contact gets one a minute and
//!   [`CODES_PER_HOUR`] an hour, an address codes for [`CONTACTS_PER_ADDRESS`] contacts an hour);
//!   `/logout` unlinks the email from the number; `/whoami` says which one is linked.
//! - A number is `open` (anyone reaches its policy), `email` (only contacts who proved an email),
//!   or `sharing` (only contacts whose proved email the number is shared with; anyone else who
//!   proved one gets an access request for owners and admins to approve or refuse).
//! - The host answers commands and refusals itself; the policy never sees them.

use lettre::Address;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{Audience, Issued, MAX_TRIES, StoreError, Tx, now_ms};
#[cfg(doc)]
use crate::store::{CODES_PER_HOUR, CONTACTS_PER_ADDRESS};
use crate::tenancy::Role;

/// How long a mailed code works.
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// How long the host does not repeat the same refusal in a conversation.
pub const REFUSAL_QUIET_MS: i64 = 5 * 60 * 1000;
/// The access policies a number may have.
pub const POLICIES: [&str; 3] = ["open", "email", "sharing"];

/// A command a customer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/login you@example.com`.
    Login(Address),
    /// `/login 123456`.
    Code(String),
    /// `/login` with nothing usable after it.
    LoginUsage,
    /// `/logout`.
    Logout,
    /// `/whoami`.
    Whoami,
}

/// The command in a message's text, if it is one (`/login@SomeBot …` as Telegram writes
/// commands in groups counts too).
pub fn parse(text: &str) -> Option<Command> {
    let mut words = text.split_whitespace();
    let first = words.next()?.to_lowercase();
    let name = first.split('@').next().unwrap_or_default();
    let argument = words.next();
    match name {
        "/login" => Some(match argument {
            Some(a) if a.len() == 6 && a.bytes().all(|b| b.is_ascii_digit()) => {
                Command::Code(a.to_string())
            }
            Some(a) => crate::mail::address(a).map_or(Command::LoginUsage, Command::Login),
            None => Command::LoginUsage,
        }),
        "/logout" => Some(Command::Logout),
        "/whoami" => Some(Command::Whoami),
        _ => None,
    }
}

/// The text of a `/login 123456` message as the host keeps it: the code never stays in the
/// conversation.
pub fn redacted(command: &Command) -> Option<&'static str> {
    matches!(command, Command::Code(_)).then_some("/login ······")
}

/// Who is writing, as the door sees them.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The number.
    pub connection_id: String,
    /// The contact.
    pub contact_id: String,
    /// Their conversation.
    pub conversation_id: String,
    /// The tenant's name, for the mail.
    pub business: String,
}

/// A code to mail once the decision is committed.
#[derive(Debug, Clone)]
pub struct CodeMail {
    /// Where.
    pub to: Address,
    /// The code.
    pub code: String,
    /// The business that asks.
    pub business: String,
}

impl CodeMail {
    /// The mail's subject and text.
    pub fn compose(&self) -> (String, String) {
        (
            format!("Your verification code for \"{}\"", self.business),
            format!(
                "Your code is {}.\n\nSend \"/login {}\" in your chat with {} to verify this email. \
                 The code works for 10 minutes.\n\nIf you did not ask for it, ignore this mail: \
                 nothing changes without the code.\n",
                self.code, self.code, self.business
            ),
        )
    }
}

/// What the host answers at the door, and the mail to send after commit.
#[derive(Debug, Default)]
pub struct Answer {
    /// The host's replies, in order.
    pub replies: Vec<String>,
    /// A code to mail.
    pub mail: Option<CodeMail>,
}

impl Answer {
    fn say(text: impl Into<String>) -> Answer {
        Answer {
            replies: vec![text.into()],
            mail: None,
        }
    }
}

/// SHA-256 (hex) of a contact's code: a code proves nothing for another contact.
fn code_hash(contact: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{contact}:{code}").as_bytes()))
}

/// A fresh six-digit code, uniformly drawn from the operating system's RNG.
fn new_code() -> String {
    loop {
        let mut bytes = [0u8; 4];
        crate::tenancy::ids::fill_random(&mut bytes);
        let n = u32::from_le_bytes(bytes);
        // Below the largest multiple of a million, so every code is equally likely.
        if n < u32::MAX - u32::MAX % 1_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// Run a command for `who`, in the decision's transaction.
pub async fn run(tx: &mut Tx, who: &Visitor, command: &Command) -> Result<Answer, StoreError> {
    let now = now_ms();
    Ok(match command {
        Command::LoginUsage => Answer::say(
            "To verify your email, send /login followed by it, e.g. /login you@example.com. \
             We mail you a six-digit code; then send /login and the code.",
        ),
        Command::Whoami => match tx.verified_email(&who.contact_id).await? {
            Some(email) => Answer::say(format!("You are verified as {email} on this number.")),
            None => Answer::say(
                "No email is verified on this number. Send /login you@example.com to verify one.",
            ),
        },
        Command::Logout => match tx.verified_email(&who.contact_id).await? {
            Some(email) => {
                tx.set_verified_email(&who.contact_id, None).await?;
                tx.spend_login_code(&who.contact_id).await?;
                Answer::say(format!("Done: {email} is no longer linked to this number."))
            }
            None => Answer::say("No email is linked to this number."),
        },
        Command::Login(address) => {
            let code = new_code();
            let issued = tx
                .issue_login_code(
                    &who.contact_id,
                    address.as_ref(),
                    &code_hash(&who.contact_id, &code),
                    now + CODE_TTL_MS,
                )
                .await?;
            match issued {
                Issued::Sent => Answer {
                    replies: vec![format!(
                        "We mailed a six-digit code to {address}. Send /login and the code, e.g. \
                         /login 123456. It works for 10 minutes."
                    )],
                    mail: Some(CodeMail {
                        to: address.clone(),
                        code,
                        business: who.business.clone(),
                    }),
                },
                Issued::TooSoon => Answer::say(
                    "We sent you a code less than a minute ago. Check your mail (and its spam \
                     folder), or send /login again in a minute.",
                ),
                Issued::TooMany => Answer::say(
                    "Too many codes were sent to you in the last hour. Try again later.",
                ),
                Issued::AddressBusy => Answer::say(
                    "Too many codes were asked for this address in the last hour. Try again later.",
                ),
            }
        }
        Command::Code(code) => {
            // Each guess spends one of the code's tries, however many arrive at once.
            let Some(pending) = tx.try_login_code(&who.contact_id).await? else {
                return Ok(Answer::say(
                    "There is no code waiting for you. Send /login you@example.com first.",
                ));
            };
            if pending.expires_at <= now {
                tx.spend_login_code(&who.contact_id).await?;
                return Ok(Answer::say(
                    "That code has expired. Send /login you@example.com for a new one.",
                ));
            }
            let right: bool = code_hash(&who.contact_id, code)
                .as_bytes()
                .ct_eq(pending.code_hash.as_bytes())
                .into();
            if !right {
                let left = MAX_TRIES - pending.attempts;
                if left <= 0 {
                    tx.spend_login_code(&who.contact_id).await?;
                    return Ok(Answer::say(
                        "Too many wrong codes: this code no longer works. Send /login \
                         you@example.com for a new one.",
                    ));
                }
                return Ok(Answer::say(format!(
                    "That code is not right. {left} {} left.",
                    if left == 1 { "try" } else { "tries" }
                )));
            }
            tx.spend_login_code(&who.contact_id).await?;
            tx.set_verified_email(&who.contact_id, Some(&pending.email))
                .await?;
            let mut answer = Answer::say(format!("Thanks: you are verified as {}.", pending.email));
            if tx.access_policy(&who.connection_id).await? == "sharing"
                && !tx.is_shared(&who.connection_id, &pending.email).await?
            {
                answer
                    .replies
                    .push(ask_access(tx, who, &pending.email).await?);
            }
            answer
        }
    })
}

/// Who a contact is to the number's access policy.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The email they proved on this number, if any (policies see it).
    pub email: Option<String>,
    /// Whether the number's access policy lets them reach its reply policy.
    pub admitted: bool,
}

/// Whether `who` may reach the number's reply policy, whose access `policy` is as read with
/// the message, as is the contact's proved `email` (reads only on a number that shares).
pub async fn gate(
    tx: &mut Tx,
    connection: &str,
    policy: &str,
    email: Option<String>,
) -> Result<Gate, StoreError> {
    let admitted = match (policy, &email) {
        ("open", _) => true,
        ("email", Some(_)) => true,
        ("sharing", Some(e)) => tx.is_shared(connection, e).await?,
        _ => false,
    };
    Ok(Gate { email, admitted })
}

/// What the host answers a contact the number's access policy keeps out (asking for access
/// on their behalf when they proved an email but the number is not shared with it).
pub async fn refuse(tx: &mut Tx, who: &Visitor) -> Result<Answer, StoreError> {
    let policy = tx.access_policy(&who.connection_id).await?;
    let said = match tx.verified_email(&who.contact_id).await? {
        None if policy == "email" => "Before we chat, please verify your email: send /login \
             followed by it, e.g. /login you@example.com."
            .to_string(),
        None => "This number only chats with people it is shared with. Verify your email first: \
             send /login followed by it, e.g. /login you@example.com."
            .to_string(),
        Some(email) => ask_access(tx, who, &email).await?,
    };
    // The same answer again so soon is not repeated (a customer writing on, or a bot on the
    // other end, gets it once).
    let repeated = tx
        .last_host_reply(&who.conversation_id)
        .await?
        .is_some_and(|(text, at)| text == said && now_ms() - at < REFUSAL_QUIET_MS);
    Ok(if repeated {
        Answer::default()
    } else {
        Answer::say(said)
    })
}

/// Ask the number's owners and admins to share it with `email`; what to tell the customer.
async fn ask_access(tx: &mut Tx, who: &Visitor, email: &str) -> Result<String, StoreError> {
    let (request, new) = tx
        .request_access(
            &who.connection_id,
            &who.contact_id,
            &who.conversation_id,
            email,
        )
        .await?;
    if request.state == "refused" {
        return Ok(format!(
            "Access for {email} was declined. Reach the business another way if you think this \
             is a mistake."
        ));
    }
    if new {
        tx.notify(
            Audience::AtLeast(Role::Admin),
            "access",
            Some(&who.conversation_id),
            Some(&who.connection_id),
            &format!("{email} asks for access to this number"),
        )
        .await?;
        tx.emit(
            "access",
            Some(&who.conversation_id),
            None,
            serde_json::json!({"request": request.id, "state": "pending"}),
        )
        .await?;
    }
    Ok(if new {
        format!(
            "This number only chats with people it is shared with. We asked the team to let \
             {email} in; you can write once they approve."
        )
    } else {
        format!("Your request for {email} is still waiting for the team's approval.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_customers_type_them() {
        let addr = |s: &str| crate::mail::address(s).expect("address");
        assert_eq!(
            parse("/login Ana@Example.com"),
            Some(Command::Login(addr("ana@example.com")))
        );
        assert_eq!(
            parse("  /LOGIN 123456 "),
            Some(Command::Code("123456".into()))
        );
        assert_eq!(
            parse("/login@ShopBot 012345"),
            Some(Command::Code("012345".into()))
        );
        assert_eq!(parse("/login 12345"), Some(Command::LoginUsage));
        assert_eq!(parse("/login"), Some(Command::LoginUsage));
        assert_eq!(parse("/login not-an-email"), Some(Command::LoginUsage));
        assert_eq!(parse("/logout please"), Some(Command::Logout));
        assert_eq!(parse("/whoami"), Some(Command::Whoami));
        for plain in ["hello", "login me", "/loginx", "", "   ", "/ login"] {
            assert_eq!(parse(plain), None, "{plain:?}");
        }
        assert_eq!(
            redacted(&Command::Code("123456".into())),
            Some("/login ······")
        );
        assert_eq!(redacted(&Command::Whoami), None);
    }

    #[test]
    fn codes_are_six_digits_bound_to_the_contact() {
        for _ in 0..100 {
            let c = new_code();
            assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        }
        assert_ne!(code_hash("cnt_1", "123456"), code_hash("cnt_2", "123456"));
        let (subject, text) = CodeMail {
            to: crate::mail::address("a@b.co").expect("address"),
            code: "042917".into(),
            business: "Lucky Shrub".into(),
        }
        .compose();
        assert!(subject.contains("Lucky Shrub") && text.contains("/login 042917"));
    }
}
