//! The one mailer (DECISIONS C3): invitations, password resets and, later, `/login` codes.
//!
//! SMTP through lettre when `SWITCHYARD_SMTP_URL` is set; otherwise every message is written as
//! an `.eml` file under `<data-dir>/mail/` and the start banner says so. The SMTP URL may hold
//! credentials: it is never logged, shown or put in an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{
    Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why mail could not be set up or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The configuration cannot be used (which setting, why; never its value).
    #[error("{0}")]
    Config(String),
    /// The recipient is not an email address.
    #[error("not an email address")]
    Address,
    /// The message could not be handed over.
    #[error("mail could not be sent: {0}")]
    Send(String),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// Sends the host's mail.
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    described: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &self.described)
            .finish()
    }
}

/// Parse an email address (lettre's rules), lower-cased: how people are named everywhere.
pub fn address(text: &str) -> Result<Address, MailError> {
    let text = text.trim();
    if text.len() > 254 || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(MailError::Address);
    }
    text.to_lowercase()
        .parse::<Address>()
        .map_err(|_| MailError::Address)
}

impl Mailer {
    /// SMTP at `smtp_url` (`smtp://`, `smtps://`, with `?tls=required` for STARTTLS), or files
    /// under `<data_dir>/mail/` without one.
    pub fn new(smtp_url: Option<&str>, from: &str, data_dir: &Path) -> Result<Mailer, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailError::Config("SWITCHYARD_MAIL_FROM: not a mailbox".into()))?;
        let (transport, described) = match smtp_url {
            Some(url) => {
                let parsed = url::Url::parse(url)
                    .map_err(|_| MailError::Config("SWITCHYARD_SMTP_URL: not a URL".into()))?;
                let described = format!(
                    "SMTP at {}:{}",
                    parsed.host_str().unwrap_or("?"),
                    parsed
                        .port()
                        .map_or_else(|| "default port".into(), |p| p.to_string())
                );
                let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|_| {
                        MailError::Config(
                            "SWITCHYARD_SMTP_URL: expected smtp://[user:password@]host[:port] or smtps://…"
                                .into(),
                        )
                    })?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                (Transport::Smtp(smtp), described)
            }
            None => {
                let dir = mail_dir(data_dir);
                crate::runtime::create_private_dir(&dir)
                    .map_err(|e| MailError::Config(format!("{}: {e}", dir.display())))?;
                let described = format!("files in {}", dir.display());
                (Transport::Files(AsyncFileTransport::new(dir)), described)
            }
        };
        Ok(Mailer {
            from,
            transport,
            described,
        })
    }

    /// Where mail goes, for the start banner (never credentials).
    pub fn describe(&self) -> &str {
        &self.described
    }

    /// Whether mail only reaches files (no SMTP configured).
    pub fn to_files(&self) -> bool {
        matches!(self.transport, Transport::Files(_))
    }

    /// Send a plain-text message.
    pub async fn send(&self, to: &Address, subject: &str, text: String) -> Result<(), MailError> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.clone()))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| MailError::Send(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(smtp_reason(&e))),
            Transport::Files(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }
}

/// Where demo mail is written.
pub fn mail_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("mail")
}

/// An SMTP failure in words, without anything of the URL.
fn smtp_reason(e: &lettre::transport::smtp::Error) -> String {
    if e.is_timeout() {
        "the SMTP server did not answer in time".into()
    } else if e.is_permanent() {
        "the SMTP server refused the message".into()
    } else if e.is_transient() {
        "the SMTP server refused the message for now".into()
    } else {
        "the SMTP server could not be reached".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_lower_cased() {
        assert_eq!(
            address(" Ana@Example.COM ").map(|a| a.to_string()).ok(),
            Some("ana@example.com".to_string())
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "a b@example.com",
            "a@b\r\nBcc: x@y",
        ] {
            assert!(address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn smtp_credentials_never_show() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Mailer::new(
            Some("smtp://user:hunter2@127.0.0.1:2525"),
            "Switchyard <no-reply@example.com>",
            dir.path(),
        )
        .expect("mailer");
        assert!(!format!("{m:?}").contains("hunter2"));
        assert!(!m.describe().contains("hunter2"));
        assert!(!m.to_files());
        let e =
            Mailer::new(Some("nonsense://hunter2@x"), "a@b.c", dir.path()).expect_err("bad url");
        assert!(!e.to_string().contains("hunter2"));
    }
}
