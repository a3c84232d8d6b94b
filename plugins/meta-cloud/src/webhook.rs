//! Meta's webhook payloads (`object: whatsapp_business_account`) → inbound events.
//!
//! Every `entry[]` and every `changes[]` is read; `field: messages` carries messages, statuses
//! and errors, routed by `value.metadata.phone_number_id`. Everything else is `ignored`, never an
//! error: an error would make Meta retry a payload that will never parse differently. Each
//! entry, change, message and status is parsed on its own, so one odd part cannot hide the rest.
//!
//! Reference: <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages>.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::errors::MetaError;
use switchyard_sdk::types::{
    AccountChange, AccountEvent, Choice, ContactChange, DeliveryState, FlowResponse, InboundEvent,
    InboundMessage, InteractiveReply, Location, MarketingPreference, MediaRef, MessageKind, Party,
    Pricing, Referral, StatusUpdate, TemplateStatus,
};

/// The `object` of WhatsApp Business Account webhooks.
pub const OBJECT: &str = "whatsapp_business_account";

#[derive(Deserialize)]
struct Webhook<'a> {
    object: String,
    #[serde(default, borrow)]
    entry: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    /// The WhatsApp Business Account id.
    #[serde(default, deserialize_with = "lenient_string")]
    id: Option<String>,
    /// When Meta says the changes happened, in Unix seconds.
    #[serde(default, deserialize_with = "lenient_time")]
    time: Option<u64>,
    #[serde(default, borrow)]
    changes: Option<Vec<&'a RawValue>>,
}

/// The usual shape, read in one pass; anything odder takes the part-by-part path.
#[derive(Deserialize)]
struct TypedWebhook<'a> {
    object: String,
    #[serde(default, borrow)]
    entry: Option<Vec<TypedEntry<'a>>>,
}

#[derive(Deserialize)]
struct TypedEntry<'a> {
    /// The WhatsApp Business Account id.
    #[serde(default, deserialize_with = "lenient_string")]
    id: Option<String>,
    /// When Meta says the changes happened, in Unix seconds.
    #[serde(default, deserialize_with = "lenient_time")]
    time: Option<u64>,
    #[serde(default, borrow)]
    changes: Option<Vec<Change<'a>>>,
}

/// What an entry says about the changes in it.
#[derive(Clone, Copy)]
struct EntryInfo<'e> {
    /// The WhatsApp Business Account id.
    waba: Option<&'e str>,
    /// `entry[].time`, when given.
    time: Option<u64>,
}

/// `field: account_update`: an event about the WhatsApp Business Account.
#[derive(Deserialize)]
struct AccountUpdate {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    waba_info: Option<WabaInfo>,
}

#[derive(Deserialize)]
struct WabaInfo {
    #[serde(default, deserialize_with = "lenient_string")]
    waba_id: Option<String>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(default)]
    field: Option<String>,
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MessagesValue<'a> {
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default, borrow)]
    contacts: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    messages: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    statuses: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    errors: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    user_preferences: Option<Vec<&'a RawValue>>,
}

/// `field: smb_message_echoes`: messages the business sent from the WhatsApp Business app (or a
/// linked device) on a number onboarded in coexistence.
#[derive(Deserialize)]
struct EchoesValue<'a> {
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default, borrow)]
    message_echoes: Option<Vec<&'a RawValue>>,
}

/// One `user_preferences[]` entry: a user stopped or resumed marketing messages.
#[derive(Deserialize)]
struct UserPreference {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

/// The identity fields of a `system` message (`user_changed_number`, `user_changed_user_id`).
#[derive(Deserialize)]
struct SystemChange {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// The new phone number / WhatsApp id (`user_changed_number`).
    #[serde(default)]
    wa_id: Option<String>,
    /// The new business-scoped user id.
    #[serde(default)]
    user_id: Option<String>,
    /// The business-scoped user id before the change.
    #[serde(default)]
    previous_user_id: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default, deserialize_with = "lenient_string")]
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

/// One message; the per-type payloads stay raw and are read only for the message's type.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
    /// The customer an echo went to (`smb_message_echoes`).
    #[serde(default)]
    to: Option<String>,
    #[serde(default, deserialize_with = "unix_seconds")]
    timestamp: u64,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    image: Option<&'a RawValue>,
    #[serde(default, borrow)]
    audio: Option<&'a RawValue>,
    #[serde(default, borrow)]
    video: Option<&'a RawValue>,
    #[serde(default, borrow)]
    document: Option<&'a RawValue>,
    #[serde(default, borrow)]
    sticker: Option<&'a RawValue>,
    #[serde(default, borrow)]
    location: Option<&'a RawValue>,
    #[serde(default, borrow)]
    contacts: Option<&'a RawValue>,
    #[serde(default, borrow)]
    interactive: Option<&'a RawValue>,
    #[serde(default, borrow)]
    button: Option<&'a RawValue>,
    #[serde(default, borrow)]
    reaction: Option<&'a RawValue>,
    #[serde(default, borrow)]
    order: Option<&'a RawValue>,
    #[serde(default, borrow)]
    system: Option<&'a RawValue>,
    #[serde(default, borrow)]
    context: Option<&'a RawValue>,
    #[serde(default, borrow)]
    referral: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Text {
    body: Option<String>,
}

#[derive(Deserialize)]
struct Media {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct LocationJson {
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
struct Interactive {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    button_reply: Option<ChoiceJson>,
    #[serde(default)]
    list_reply: Option<ChoiceJson>,
    #[serde(default)]
    nfm_reply: Option<NfmReply>,
}

#[derive(Deserialize)]
struct ChoiceJson {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct NfmReply {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    body: Option<String>,
    response_json: String,
}

/// `button.text`, `order.text`, `system.body`: the payloads whose text is one field.
#[derive(Deserialize)]
struct TextField {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct Reaction {
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct Context {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct ReferralJson {
    #[serde(default)]
    source_url: Option<String>,
    #[serde(default)]
    source_type: Option<String>,
    #[serde(default)]
    source_id: Option<String>,
    #[serde(default)]
    headline: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    ctwa_clid: Option<String>,
}

#[derive(Deserialize)]
struct Status<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "unix_seconds")]
    timestamp: u64,
    #[serde(default)]
    recipient_id: Option<String>,
    #[serde(default)]
    recipient_user_id: Option<String>,
    #[serde(default)]
    recipient_type: Option<String>,
    #[serde(default, borrow)]
    errors: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    pricing: Option<&'a RawValue>,
}

/// A status's `pricing` object: what Meta charges for the message.
#[derive(Deserialize)]
struct MetaPricing {
    #[serde(default, deserialize_with = "lenient_string")]
    category: Option<String>,
    /// Deprecated by Meta with per-message pricing (July 2025), still sent.
    #[serde(default)]
    billable: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient_string")]
    pricing_model: Option<String>,
    #[serde(default, deserialize_with = "lenient_string", rename = "type")]
    pricing_type: Option<String>,
}

/// The longest pricing word kept (Meta's longest today, `authentication_international`, is 28).
const PRICING_WORD_MAX: usize = 40;

/// A pricing word as Meta writes it (`marketing_lite`, `PMP`), or nothing for anything else.
fn pricing_word(w: Option<String>) -> Option<String> {
    w.filter(|w| {
        !w.is_empty()
            && w.len() <= PRICING_WORD_MAX
            && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// The pricing a status carries; without a readable category there is none. Meta deprecated
/// `billable` with per-message pricing: without it, only a `regular` message is charged.
fn pricing(raw: Option<&RawValue>) -> Option<Pricing> {
    let p: MetaPricing = serde_json::from_str(raw?.get()).ok()?;
    let category = pricing_word(p.category)?.to_ascii_lowercase();
    let pricing_type = pricing_word(p.pricing_type);
    let billable = match p.billable {
        Some(serde_json::Value::Bool(b)) => Some(b),
        _ => pricing_type.as_deref().map(|t| t == "regular"),
    };
    Some(Pricing {
        category,
        billable,
        model: pricing_word(p.pricing_model),
        pricing_type,
    })
}

/// Unix seconds given as a string (Meta's usual form) or a number; anything else is 0.
fn unix_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(Lenient(|v: Scalar<'_>| match v {
        Scalar::Str(s) => s.trim().parse().unwrap_or_default(),
        Scalar::U64(n) => n,
        Scalar::I64(_) | Scalar::Other => 0,
    }))
}

/// Unix seconds given as a number or a numeric string; anything else (or 0) is none.
fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_any(Lenient(|v: Scalar<'_>| match v {
        Scalar::Str(s) => s.trim().parse().ok(),
        Scalar::U64(n) => Some(n),
        Scalar::I64(_) | Scalar::Other => None,
    }))
    .map(|t: Option<u64>| t.filter(|t| *t > 0))
}

/// An id given as a string or a number; anything else is none.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(Lenient(|v: Scalar<'_>| match v {
        Scalar::Str(s) => Some(s.to_string()),
        Scalar::U64(n) => Some(n.to_string()),
        Scalar::I64(n) => Some(n.to_string()),
        Scalar::Other => None,
    }))
}

/// What a lenient field saw.
enum Scalar<'s> {
    Str(&'s str),
    U64(u64),
    I64(i64),
    Other,
}

/// A visitor that accepts any JSON value and maps it with a function, without allocating.
struct Lenient<F>(F);

impl<'de, T, F: FnOnce(Scalar<'_>) -> T> Visitor<'de> for Lenient<F> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.0)(Scalar::Str(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok((self.0)(Scalar::U64(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Ok((self.0)(Scalar::I64(v)))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
        Ok((self.0)(Scalar::Other))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        Ok((self.0)(Scalar::Other))
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok((self.0)(Scalar::Other))
    }
    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        Ok((self.0)(Scalar::Other))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok((self.0)(Scalar::Other))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok((self.0)(Scalar::Other))
    }
}

/// Read a raw payload as `T`, or nothing when it is absent or of another shape.
fn read<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

fn raw_text(raw: Option<&RawValue>) -> Option<String> {
    raw.map(|r| r.get().to_string())
}

fn base64_digit(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Standard or URL-safe base64, padded or not.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | base64_digit(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A media hash as lower-case hex: webhooks give it in base64 or hex; anything else is kept.
pub fn sha256_hex(v: String) -> String {
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return v.to_ascii_lowercase();
    }
    match base64_decode(&v) {
        Some(bytes) if bytes.len() == 32 => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        _ => v,
    }
}

/// Parse a webhook body into events; `Err` only when it is not a WhatsApp webhook at all.
pub fn parse(body: &[u8]) -> Result<Vec<InboundEvent>, String> {
    let mut events = Vec::new();
    match serde_json::from_slice::<TypedWebhook<'_>>(body) {
        Ok(hook) if hook.object != OBJECT => return Ok(vec![not_whatsapp(&hook.object)]),
        Ok(hook) => {
            for entry in hook.entry.into_iter().flatten() {
                let info = EntryInfo {
                    waba: entry.id.as_deref(),
                    time: entry.time,
                };
                for change in entry.changes.into_iter().flatten() {
                    push_change(info, change, &mut events);
                }
            }
        }
        Err(_) => {
            let hook: Webhook<'_> = serde_json::from_slice(body)
                .map_err(|e| format!("not a Meta webhook body: {e}"))?;
            if hook.object != OBJECT {
                return Ok(vec![not_whatsapp(&hook.object)]);
            }
            for entry in hook.entry.unwrap_or_default() {
                let entry = match serde_json::from_str::<Entry<'_>>(entry.get()) {
                    Ok(entry) => entry,
                    Err(e) => {
                        events.push(InboundEvent::Ignored(format!("entry not understood: {e}")));
                        continue;
                    }
                };
                let info = EntryInfo {
                    waba: entry.id.as_deref(),
                    time: entry.time,
                };
                for change in entry.changes.unwrap_or_default() {
                    match serde_json::from_str::<Change<'_>>(change.get()) {
                        Ok(change) => push_change(info, change, &mut events),
                        Err(e) => events
                            .push(InboundEvent::Ignored(format!("change not understood: {e}"))),
                    }
                }
            }
        }
    }
    if events.is_empty() {
        events.push(InboundEvent::Ignored("webhook without changes".into()));
    }
    Ok(events)
}

fn not_whatsapp(object: &str) -> InboundEvent {
    InboundEvent::Ignored(format!("object {object:?} is not {OBJECT}"))
}

fn push_change(entry: EntryInfo<'_>, change: Change<'_>, events: &mut Vec<InboundEvent>) {
    match (change.field.as_deref(), change.value) {
        (Some("account_update"), Some(value)) => events.push(account_update(entry, value)),
        (Some("message_template_status_update"), Some(value)) => {
            events.push(template_status(entry.waba, value))
        }
        (Some("messages"), Some(value)) => {
            match serde_json::from_str::<MessagesValue<'_>>(value.get()) {
                Ok(value) => push_messages(value, events),
                Err(e) => events.push(InboundEvent::Ignored(format!(
                    "messages change not understood: {e}"
                ))),
            }
        }
        (Some("smb_message_echoes"), Some(value)) => {
            match serde_json::from_str::<EchoesValue<'_>>(value.get()) {
                Ok(value) => push_echoes(value, events),
                Err(e) => events.push(InboundEvent::Ignored(format!(
                    "smb_message_echoes change not understood: {e}"
                ))),
            }
        }
        (Some("messages"), None) => {
            events.push(InboundEvent::Ignored(
                "messages change without value".into(),
            ));
        }
        (Some(field), _) => events.push(InboundEvent::Ignored(format!("field {field}"))),
        (None, _) => events.push(InboundEvent::Ignored("change without field".into())),
    }
}

/// `field: message_template_status_update`.
#[derive(Deserialize)]
struct TemplateStatusUpdate {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    message_template_name: Option<String>,
    #[serde(default)]
    message_template_language: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// A template's review status changed; `REINSTATED` means approved again.
fn template_status(waba: Option<&str>, value: &RawValue) -> InboundEvent {
    let Ok(u) = serde_json::from_str::<TemplateStatusUpdate>(value.get()) else {
        return InboundEvent::Ignored("message_template_status_update not understood".into());
    };
    let (Some(account_id), Some(name), Some(language), Some(event)) = (
        waba,
        u.message_template_name,
        u.message_template_language,
        u.event,
    ) else {
        return InboundEvent::Ignored("message_template_status_update incomplete".into());
    };
    let status = match event.as_str() {
        "REINSTATED" => "APPROVED".to_string(),
        other => other.to_string(),
    };
    InboundEvent::TemplateStatus(TemplateStatus {
        account_id: account_id.to_string(),
        name,
        language,
        status,
        reason: u.reason.filter(|r| !r.is_empty() && r != "NONE"),
    })
}

/// An `account_update` change: the events that end or pause the account's connections become
/// account events, dated by the entry's `time` (so the host can ignore one older than the
/// connection it would change); the rest (verification, pricing tiers, …) are recorded as
/// ignored.
fn account_update(entry: EntryInfo<'_>, value: &RawValue) -> InboundEvent {
    let Ok(update) = serde_json::from_str::<AccountUpdate>(value.get()) else {
        return InboundEvent::Ignored("account_update not understood".into());
    };
    let event = update.event.unwrap_or_default();
    let change = match event.as_str() {
        // The business unshared the account, uninstalled the app, or deleted the account.
        "PARTNER_REMOVED" | "PARTNER_APP_UNINSTALLED" | "ACCOUNT_DELETED" => {
            AccountChange::AccessRemoved
        }
        "ACCOUNT_RESTRICTION" | "DISABLED_UPDATE" | "ACCOUNT_OFFBOARDED" => {
            AccountChange::Restricted
        }
        "ACCOUNT_RECONNECTED" | "ACCOUNT_REINSTATED" => AccountChange::Reinstated,
        _ => return InboundEvent::Ignored(format!("account_update {event}")),
    };
    let account = update
        .waba_info
        .and_then(|w| w.waba_id)
        .or_else(|| entry.waba.map(str::to_string));
    match account {
        Some(account_id) => InboundEvent::Account(AccountEvent {
            occurred_at: entry.time,
            account_id,
            change,
            details: format!("account_update {event}"),
        }),
        None => InboundEvent::Ignored(format!("account_update {event} without an account id")),
    }
}

fn push_messages(value: MessagesValue<'_>, events: &mut Vec<InboundEvent>) {
    let Some(channel) = value.metadata.and_then(|m| m.phone_number_id) else {
        events.push(InboundEvent::Ignored(
            "messages change without metadata.phone_number_id".into(),
        ));
        return;
    };
    let contacts: Vec<Contact> = value
        .contacts
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| serde_json::from_str(c.get()).ok())
        .collect();
    let messages = value.messages.unwrap_or_default();
    // With one message and one contact, the contact is the sender even if the ids are written
    // differently (Meta notes a user's phone number and WhatsApp id may not match).
    let sole_contact = match (messages.len(), contacts.as_slice()) {
        (1, [only]) => Some(only),
        _ => None,
    };
    for raw in messages {
        let event = message(raw, &channel, &contacts, sole_contact);
        // A number or id change is stored as the system message it is, on the contact as they
        // were; then the contact's identity moves on.
        let change = match &event {
            InboundEvent::Message(m) if m.kind == MessageKind::System => {
                identity_change(&channel, &m.sender, m.details.as_deref())
            }
            _ => None,
        };
        events.push(event);
        events.extend(change);
    }
    for raw in value.user_preferences.unwrap_or_default() {
        events.push(marketing_preference(raw, &channel));
    }
    for raw in value.statuses.unwrap_or_default() {
        events.push(status(raw, &channel, &contacts));
    }
    for raw in value.errors.unwrap_or_default() {
        let description = match serde_json::from_str::<MetaError>(raw.get()) {
            Ok(e) => {
                let e = e.into_provider_error();
                format!("webhook error {} for {channel}: {}", e.code, e.message)
            }
            Err(_) => format!("webhook error for {channel}: {}", raw.get()),
        };
        events.push(InboundEvent::Ignored(description));
    }
}

/// Each echo as the message it is, its `sender` being the customer it went to (`to`).
fn push_echoes(value: EchoesValue<'_>, events: &mut Vec<InboundEvent>) {
    let Some(channel) = value.metadata.and_then(|m| m.phone_number_id) else {
        events.push(InboundEvent::Ignored(
            "smb_message_echoes change without metadata.phone_number_id".into(),
        ));
        return;
    };
    for raw in value.message_echoes.unwrap_or_default() {
        let to = serde_json::from_str::<Message<'_>>(raw.get())
            .ok()
            .and_then(|m| m.to);
        events.push(match (message(raw, &channel, &[], None), to) {
            (InboundEvent::Message(mut m), Some(to)) => {
                m.sender = Party {
                    phone: Some(to),
                    user_id: None,
                    name: None,
                };
                InboundEvent::Echo(m)
            }
            (InboundEvent::Message(m), None) => InboundEvent::Ignored(format!(
                "echo {} without a recipient",
                m.provider_message_id
            )),
            (other, _) => other,
        });
    }
}

/// The identity change a `user_changed_number` / `user_changed_user_id` system message reports.
fn identity_change(channel: &str, sender: &Party, system: Option<&str>) -> Option<InboundEvent> {
    let change: SystemChange = serde_json::from_str(system?).ok()?;
    if !matches!(
        change.kind.as_deref(),
        Some("user_changed_number" | "user_changed_user_id")
    ) {
        return None;
    }
    let previous = Party {
        phone: sender.phone.clone(),
        user_id: change.previous_user_id.or_else(|| sender.user_id.clone()),
        name: sender.name.clone(),
    };
    let current = Party {
        phone: change.wa_id.or_else(|| sender.phone.clone()),
        user_id: change.user_id,
        name: sender.name.clone(),
    };
    (previous.phone.is_some() || previous.user_id.is_some()).then(|| {
        InboundEvent::ContactChanged(ContactChange {
            channel_address: channel.to_string(),
            previous,
            current,
        })
    })
}

/// A `user_preferences[]` entry: only `marketing_messages` stop/resume is acted on.
fn marketing_preference(raw: &RawValue, channel: &str) -> InboundEvent {
    let Ok(p) = serde_json::from_str::<UserPreference>(raw.get()) else {
        return InboundEvent::Ignored("user preference not understood".into());
    };
    let stopped = match (
        p.category.as_deref(),
        p.value.as_deref().map(str::to_ascii_lowercase),
    ) {
        (Some("marketing_messages"), Some(v)) if v == "stop" => true,
        (Some("marketing_messages"), Some(v)) if v == "resume" => false,
        (category, value) => {
            return InboundEvent::Ignored(format!("user preference {category:?} {value:?}"));
        }
    };
    if p.wa_id.is_none() && p.user_id.is_none() {
        return InboundEvent::Ignored("user preference without a user".into());
    }
    InboundEvent::MarketingPreference(MarketingPreference {
        channel_address: channel.to_string(),
        contact: Party {
            phone: p.wa_id,
            user_id: p.user_id,
            name: None,
        },
        stopped,
    })
}

fn find_contact<'c>(
    contacts: &'c [Contact],
    phone: Option<&str>,
    user_id: Option<&str>,
) -> Option<&'c Contact> {
    contacts.iter().find(|c| {
        (phone.is_some() && c.wa_id.as_deref() == phone)
            || (user_id.is_some() && c.user_id.as_deref() == user_id)
    })
}

fn message(
    raw: &RawValue,
    channel: &str,
    contacts: &[Contact],
    sole_contact: Option<&Contact>,
) -> InboundEvent {
    let m = match serde_json::from_str::<Message<'_>>(raw.get()) {
        Ok(m) => m,
        Err(e) => return InboundEvent::Ignored(format!("message not understood: {e}")),
    };
    let Some(id) = m.id.clone() else {
        return InboundEvent::Ignored("message without id".into());
    };
    let contact =
        find_contact(contacts, m.from.as_deref(), m.from_user_id.as_deref()).or(sole_contact);
    let sender = Party {
        phone: m
            .from
            .clone()
            .or_else(|| contact.and_then(|c| c.wa_id.clone())),
        user_id: m
            .from_user_id
            .clone()
            .or_else(|| contact.and_then(|c| c.user_id.clone())),
        name: contact.and_then(|c| c.profile.as_ref()?.name.clone()),
    };
    let mut out = InboundMessage {
        provider_message_id: id,
        channel_address: channel.to_string(),
        sender,
        timestamp: m.timestamp,
        kind: MessageKind::Unsupported,
        text: None,
        media: Vec::new(),
        location: None,
        interactive: None,
        reply_to: read::<Context>(m.context).and_then(|c| c.id),
        referral: read::<ReferralJson>(m.referral).map(|r| Referral {
            source_url: r.source_url,
            source_type: r.source_type,
            source_id: r.source_id,
            headline: r.headline,
            body: r.body,
            click_id: r.ctwa_clid,
        }),
        details: None,
        // Edits are not read from Meta's webhooks: every message stands on its own.
        edits: None,
    };
    // Set when the type's payload is missing or of an unexpected shape: keep what Meta sent.
    let mut not_understood = false;
    let kind = m.kind.as_deref().unwrap_or("");
    match kind {
        "text" => {
            out.kind = MessageKind::Text;
            out.text = read::<Text>(m.text).and_then(|t| t.body);
            not_understood = out.text.is_none();
        }
        "image" | "audio" | "video" | "document" | "sticker" => {
            let (kind, payload) = match kind {
                "image" => (MessageKind::Image, m.image),
                "audio" => (MessageKind::Audio, m.audio),
                "video" => (MessageKind::Video, m.video),
                "document" => (MessageKind::Document, m.document),
                _ => (MessageKind::Sticker, m.sticker),
            };
            out.kind = kind;
            match read::<Media>(payload) {
                Some(media) => {
                    out.text = media.caption.clone();
                    out.media.push(MediaRef {
                        provider_media_id: media.id,
                        url: media.url,
                        mime_type: media.mime_type,
                        sha256: media.sha256.map(sha256_hex),
                        caption: media.caption,
                        filename: media.filename,
                    });
                }
                None => not_understood = true,
            }
        }
        "location" => {
            out.kind = MessageKind::Location;
            out.location = read::<LocationJson>(m.location).map(|l| Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name,
                address: l.address,
            });
            not_understood = out.location.is_none();
        }
        "contacts" => {
            out.kind = MessageKind::Contacts;
            out.details = raw_text(m.contacts);
            not_understood = out.details.is_none();
        }
        "interactive" => {
            out.kind = MessageKind::Interactive;
            out.interactive = read::<Interactive>(m.interactive).and_then(interactive);
            out.text = match &out.interactive {
                Some(InteractiveReply::ButtonReply(c) | InteractiveReply::ListReply(c)) => {
                    Some(c.title.clone())
                }
                Some(InteractiveReply::FlowResponse(f)) => f.body.clone(),
                None => None,
            };
            if out.interactive.is_none() {
                // A reply type this connector does not type (or none at all): keep it raw.
                out.details = raw_text(m.interactive);
                not_understood = out.details.is_none();
            }
        }
        "button" => {
            out.kind = MessageKind::Button;
            out.text = read::<TextField>(m.button).and_then(|b| b.text);
            out.details = raw_text(m.button);
            not_understood = out.details.is_none();
        }
        "reaction" => {
            out.kind = MessageKind::Reaction;
            match read::<Reaction>(m.reaction) {
                Some(r) => {
                    // No emoji (or an empty one) means the customer removed their reaction.
                    out.text = r.emoji.filter(|e| !e.is_empty());
                    if r.message_id.is_some() {
                        out.reply_to = r.message_id;
                    }
                }
                None => not_understood = true,
            }
        }
        "order" => {
            out.kind = MessageKind::Order;
            out.text = read::<TextField>(m.order).and_then(|o| o.text);
            out.details = raw_text(m.order);
            not_understood = out.details.is_none();
        }
        "system" => {
            out.kind = MessageKind::System;
            out.text = read::<TextField>(m.system).and_then(|s| s.body);
            out.details = raw_text(m.system);
            not_understood = out.details.is_none();
        }
        "request_welcome" => out.kind = MessageKind::RequestWelcome,
        // `unsupported`, `unknown` and types this connector does not know: the whole message,
        // with its `errors[]` (e.g. 131051) and any `unsupported.type`, goes to `details`.
        _ => not_understood = true,
    }
    if not_understood && out.details.is_none() {
        out.details = Some(raw.get().to_string());
    }
    InboundEvent::Message(out)
}

fn interactive(i: Interactive) -> Option<InteractiveReply> {
    let choice = |c: ChoiceJson| Choice {
        title: c.title.unwrap_or_default(),
        id: c.id,
        description: c.description,
    };
    match i.kind.as_deref() {
        Some("button_reply") => i
            .button_reply
            .map(|c| InteractiveReply::ButtonReply(choice(c))),
        Some("list_reply") => i.list_reply.map(|c| InteractiveReply::ListReply(choice(c))),
        Some("nfm_reply") => i.nfm_reply.map(|n| {
            InteractiveReply::FlowResponse(FlowResponse {
                name: n.name,
                body: n.body,
                response_json: n.response_json,
            })
        }),
        _ => None,
    }
}

fn status(raw: &RawValue, channel: &str, contacts: &[Contact]) -> InboundEvent {
    let s = match serde_json::from_str::<Status<'_>>(raw.get()) {
        Ok(s) => s,
        Err(e) => return InboundEvent::Ignored(format!("status not understood: {e}")),
    };
    let (Some(id), Some(state)) = (s.id, s.status) else {
        return InboundEvent::Ignored("status without id or status".into());
    };
    let state = match state.as_str() {
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        "read" => DeliveryState::Read,
        "played" => DeliveryState::Played,
        "failed" => DeliveryState::Failed,
        other => return InboundEvent::Ignored(format!("status {other:?} for {id}")),
    };
    let error = s
        .errors
        .unwrap_or_default()
        .first()
        .map(|e| serde_json::from_str::<MetaError>(e.get()).unwrap_or_default())
        .map(MetaError::into_provider_error);
    let pricing = pricing(s.pricing);
    // For a group message `recipient_id` is the group, not a person.
    let recipient = if s.recipient_type.as_deref() == Some("group") {
        None
    } else {
        let contact = find_contact(
            contacts,
            s.recipient_id.as_deref(),
            s.recipient_user_id.as_deref(),
        );
        let phone = s
            .recipient_id
            .or_else(|| contact.and_then(|c| c.wa_id.clone()));
        let user_id = s
            .recipient_user_id
            .or_else(|| contact.and_then(|c| c.user_id.clone()));
        let name = contact.and_then(|c| c.profile.as_ref()?.name.clone());
        (phone.is_some() || user_id.is_some()).then_some(Party {
            phone,
            user_id,
            name,
        })
    };
    InboundEvent::Status(StatusUpdate {
        provider_message_id: id,
        channel_address: channel.to_string(),
        recipient,
        state,
        timestamp: s.timestamp,
        error,
        pricing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::types::ErrorKind;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/meta/");

    fn fixture(name: &str) -> Vec<InboundEvent> {
        let body = std::fs::read(format!("{FIXTURES}{name}")).expect("fixture");
        parse(&body).expect("parses")
    }

    fn messages(events: &[InboundEvent]) -> Vec<&InboundMessage> {
        events
            .iter()
            .filter_map(|e| match e {
                InboundEvent::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn statuses(events: &[InboundEvent]) -> Vec<&StatusUpdate> {
        events
            .iter()
            .filter_map(|e| match e {
                InboundEvent::Status(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// The one message of a body (an identity change may follow a system message).
    fn one_message(body: &str) -> InboundMessage {
        match parse(body.as_bytes()).expect("parses").as_slice() {
            [InboundEvent::Message(m)]
            | [InboundEvent::Message(m), InboundEvent::ContactChanged(_)] => m.clone(),
            other => panic!("{other:?}"),
        }
    }

    /// A `messages` webhook for number 106540352242922 with the given value members.
    fn hook(value_members: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},{value_members}}},"field":"messages"}}]}}]}}"#
        )
    }

    fn msg(body: &str) -> InboundMessage {
        one_message(&hook(&format!(
            r#""contacts":[{{"profile":{{"name":"Sheena Nelson"}},"wa_id":"16505551234"}}],"messages":[{{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383",{body}}}]"#
        )))
    }

    #[test]
    fn echoes_are_the_businesss_own_messages_to_the_customer() {
        let events = fixture("smb_message_echoes.json");
        let echoes: Vec<&InboundMessage> = events
            .iter()
            .filter_map(|e| match e {
                InboundEvent::Echo(m) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(echoes.len(), 2, "{events:?}");
        assert_eq!(echoes[0].channel_address, "106540352242922");
        assert_eq!(echoes[0].sender.phone.as_deref(), Some("16505551234"));
        assert_eq!(
            echoes[0].text.as_deref(),
            Some("Sure, it comes in blue too.")
        );
        assert_eq!(echoes[1].kind, MessageKind::Image);
        assert_eq!(
            echoes[1].media[0].provider_media_id.as_deref(),
            Some("1479537139650973")
        );
        // An echo without its recipient is kept as an ignored event, not guessed.
        let body = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"smb_message_echoes","value":{"metadata":{"phone_number_id":"1"},"message_echoes":[{"from":"1","id":"wamid.E","timestamp":"1","type":"text","text":{"body":"x"}}]}}]}]}"#;
        assert!(matches!(
            parse(body.as_bytes()).expect("parses").as_slice(),
            [InboundEvent::Ignored(why)] if why.contains("without a recipient")
        ));
    }

    #[test]
    fn text_fixture() {
        let events = fixture("text.json");
        let [InboundEvent::Message(m)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(m.channel_address, "106540352242922");
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(m.text.as_deref(), Some("Does it come in another color?"));
        assert_eq!(m.sender.phone.as_deref(), Some("16505551234"));
        assert_eq!(m.sender.name.as_deref(), Some("Sheena Nelson"));
        assert_eq!(m.timestamp, 1749416383);
        assert!(m.provider_message_id.starts_with("wamid.HBgL"));
        assert!(m.reply_to.is_none() && m.referral.is_none() && m.details.is_none());
    }

    #[test]
    fn bench_fixture_has_contact_context_and_referral() {
        let events = fixture("bench_1500.json");
        let [InboundEvent::Message(m)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(m.channel_address, "106540352242922");
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(m.sender.phone.as_deref(), Some("16505551234"));
        assert_eq!(m.sender.user_id.as_deref(), Some("US.13491208655302741918"));
        assert_eq!(m.sender.name.as_deref(), Some("Sheena Nelson"));
        assert_eq!(m.timestamp, 1749416383);
        assert!(m.text.as_deref().is_some_and(|t| t.contains("Lisbon")));
        assert!(
            m.reply_to
                .as_deref()
                .is_some_and(|r| r.starts_with("wamid."))
        );
        let referral = m.referral.as_ref().expect("referral");
        assert_eq!(referral.source_type.as_deref(), Some("ad"));
        assert_eq!(referral.source_id.as_deref(), Some("120226305854810726"));
        assert_eq!(
            referral.click_id.as_deref(),
            Some("Afe4ihjS-6XyqBP1r5Nc0eE")
        );
        let size = std::fs::metadata(format!("{FIXTURES}bench_1500.json"))
            .expect("bench fixture")
            .len();
        assert!(
            (1400..=1700).contains(&size),
            "bench fixture is {size} bytes"
        );
    }

    #[test]
    fn image_fixture() {
        let events = fixture("image.json");
        let [InboundEvent::Message(m)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(m.kind, MessageKind::Image);
        assert_eq!(m.text.as_deref(), Some("Is this one available in blue?"));
        let [media] = m.media.as_slice() else {
            panic!("{:?}", m.media)
        };
        assert_eq!(media.provider_media_id.as_deref(), Some("1003383421387256"));
        assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
        // Meta's base64 hash, as the hex the WIT documents.
        assert_eq!(
            media.sha256.as_deref(),
            Some("d7bdd545f09d8a73c2b990337c8211d708a04ccd9748627685e4fc79cc038039")
        );
    }

    #[test]
    fn nfm_reply_fixture() {
        let events = fixture("interactive_nfm_reply.json");
        let [InboundEvent::Message(m)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(m.kind, MessageKind::Interactive);
        assert_eq!(m.text.as_deref(), Some("Sent"));
        assert!(m.reply_to.is_some());
        let Some(InteractiveReply::FlowResponse(f)) = &m.interactive else {
            panic!("{:?}", m.interactive)
        };
        assert_eq!(f.name.as_deref(), Some("flow"));
        let answers: serde_json::Value =
            serde_json::from_str(&f.response_json).expect("response_json is JSON");
        assert!(answers["flow_token"].is_string());
    }

    #[test]
    fn failed_status_fixture_carries_the_classified_error() {
        let events = fixture("statuses_failed.json");
        let [InboundEvent::Status(s)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(s.state, DeliveryState::Failed);
        assert_eq!(s.channel_address, "106540352242922");
        assert_eq!(
            s.recipient.as_ref().and_then(|r| r.phone.as_deref()),
            Some("16505551234")
        );
        let e = s.error.as_ref().expect("error");
        assert_eq!(e.kind, ErrorKind::WindowClosed);
        assert_eq!(e.code, "131047");
        assert!(e.message.contains("24 hours"));
    }

    /// Pricing is read as Meta sends it and dropped, never guessed, when it is not.
    #[test]
    fn pricing_is_kept_when_readable_and_dropped_when_not() {
        let read = |pricing: &str| {
            let raw = format!(
                r#"{{"id":"wamid.1","status":"sent","timestamp":"1","recipient_id":"1","pricing":{pricing}}}"#
            );
            let raw: Box<RawValue> = serde_json::from_str(&raw).expect("json");
            match status(&raw, "106540352242922", &[]) {
                InboundEvent::Status(s) => s.pricing,
                other => panic!("{other:?}"),
            }
        };
        // Without `billable` (deprecated), only a regular message is charged.
        let p = read(r#"{"pricing_model":"PMP","category":"MARKETING","type":"regular"}"#);
        assert_eq!(
            p,
            Some(Pricing {
                category: "marketing".into(),
                billable: Some(true),
                model: Some("PMP".into()),
                pricing_type: Some("regular".into()),
            })
        );
        let p = read(r#"{"category":"referral_conversion","type":"free_entry_point"}"#);
        assert_eq!(p.and_then(|p| p.billable), Some(false));
        let p = read(r#"{"category":"utility"}"#).expect("category alone");
        assert_eq!((p.billable, p.model, p.pricing_type), (None, None, None));
        // Not a pricing word, too long, missing, or not an object: no pricing, status kept.
        for bad in [
            r#"{"category":"mark eting"}"#,
            &format!(r#"{{"category":"{}"}}"#, "a".repeat(41)),
            r#"{"billable":true}"#,
            r#""marketing""#,
            r#"{"category":{"x":1}}"#,
        ] {
            assert_eq!(read(bad), None, "{bad}");
        }
        let p = read(r#"{"category":"service","type":"free customer <b>","billable":"yes"}"#)
            .expect("category kept");
        assert_eq!((p.billable, p.pricing_type), (None, None));
    }

    #[test]
    fn multi_entry_fixture_reads_every_entry_and_change() {
        let events = fixture("multi_entry.json");
        let msgs = messages(&events);
        let kinds: Vec<MessageKind> = msgs.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                MessageKind::Image,
                MessageKind::Interactive,
                MessageKind::Reaction,
                MessageKind::RequestWelcome,
                MessageKind::Unsupported,
                MessageKind::Location,
            ]
        );
        assert_eq!(msgs[0].text.as_deref(), Some("this one"));
        assert!(matches!(
            &msgs[1].interactive,
            Some(InteractiveReply::ButtonReply(c)) if c.id == "size_m" && c.title == "Medium"
        ));
        assert_eq!(msgs[1].text.as_deref(), Some("Medium"));
        assert_eq!(
            msgs[2].reply_to.as_deref(),
            Some(msgs[0].provider_message_id.as_str())
        );
        assert_eq!(msgs[2].text.as_deref(), Some("\u{2764}\u{fe0f}"));
        // A BSUID-only sender: no phone number, the user id and name from `contacts`.
        assert_eq!(msgs[3].sender.phone, None);
        assert_eq!(
            msgs[3].sender.user_id.as_deref(),
            Some("PT.1502576394655843")
        );
        assert_eq!(msgs[3].sender.name.as_deref(), Some("Rui Costa"));
        assert!(
            msgs[4]
                .details
                .as_deref()
                .is_some_and(|d| d.contains("131051"))
        );
        assert_eq!(msgs[5].channel_address, "106540352242923");
        assert_eq!(
            msgs[5].location.as_ref().map(|l| l.latitude),
            Some(38.7077507)
        );
        assert!(
            msgs[..5]
                .iter()
                .all(|m| m.channel_address == "106540352242922")
        );

        let st = statuses(&events);
        let states: Vec<DeliveryState> = st.iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [
                DeliveryState::Sent,
                DeliveryState::Delivered,
                DeliveryState::Read
            ]
        );
        assert_eq!(st[2].channel_address, "106540352242923");
        // Meta's per-message pricing, as sent: a free service reply and a charged utility one.
        assert_eq!(
            st[0].pricing,
            Some(Pricing {
                category: "service".into(),
                billable: Some(false),
                model: Some("PMP".into()),
                pricing_type: Some("free_customer_service".into()),
            })
        );
        assert_eq!(
            st[1]
                .pricing
                .as_ref()
                .map(|p| (p.category.as_str(), p.billable)),
            Some(("utility", Some(true)))
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, InboundEvent::TemplateStatus(_)))
        );
    }

    #[test]
    fn template_status_updates_name_the_account_and_template() {
        let events = fixture("template_status_update.json");
        assert!(
            matches!(events.as_slice(), [InboundEvent::TemplateStatus(t)]
                if t.account_id == "102290129340398" && t.name == "order_update"
                    && t.language == "en_US" && t.status == "APPROVED" && t.reason.is_none()),
            "{events:?}"
        );
    }

    #[test]
    fn media_types() {
        let m = msg(
            r#""type":"audio","audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"x","id":"1146","voice":true}"#,
        );
        assert_eq!(m.kind, MessageKind::Audio);
        assert_eq!(
            m.media[0].mime_type.as_deref(),
            Some("audio/ogg; codecs=opus")
        );
        assert_eq!(m.text, None);
        let m = msg(
            r#""type":"document","document":{"caption":"Invoice","filename":"invoice-48213.pdf","mime_type":"application/pdf","sha256":"x","id":"1147"}"#,
        );
        assert_eq!(m.kind, MessageKind::Document);
        assert_eq!(m.media[0].filename.as_deref(), Some("invoice-48213.pdf"));
        assert_eq!(m.text.as_deref(), Some("Invoice"));
        let m = msg(r#""type":"video","video":{"mime_type":"video/mp4","sha256":"x","id":"1148"}"#);
        assert_eq!(m.kind, MessageKind::Video);
        let m = msg(
            r#""type":"sticker","sticker":{"mime_type":"image/webp","sha256":"x","id":"1149","animated":false}"#,
        );
        assert_eq!(m.kind, MessageKind::Sticker);
        assert_eq!(m.media[0].provider_media_id.as_deref(), Some("1149"));
    }

    #[test]
    fn replies_buttons_orders_contacts_and_system() {
        let m = msg(
            r#""context":{"from":"15550783881","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBIyRkQxREUxRDJFQUJGMkQ3NDIA"},"type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"priority_express","title":"Express Shipping","description":"Next Day to 2 Days"}}"#,
        );
        assert!(matches!(
            &m.interactive,
            Some(InteractiveReply::ListReply(c)) if c.description.as_deref() == Some("Next Day to 2 Days")
        ));
        assert!(
            m.reply_to
                .as_deref()
                .is_some_and(|r| r.starts_with("wamid."))
        );

        let m =
            msg(r#""type":"button","button":{"payload":"Unsubscribe","text":"Stop promotions"}"#);
        assert_eq!(m.kind, MessageKind::Button);
        assert_eq!(m.text.as_deref(), Some("Stop promotions"));
        assert!(
            m.details
                .as_deref()
                .is_some_and(|d| d.contains("Unsubscribe"))
        );

        let m = msg(
            r#""type":"order","order":{"catalog_id":"194836987003835","text":"Two please","product_items":[{"product_retailer_id":"di9ozbzfi4","quantity":2,"item_price":30,"currency":"USD"}]}"#,
        );
        assert_eq!(m.kind, MessageKind::Order);
        assert_eq!(m.text.as_deref(), Some("Two please"));
        assert!(
            m.details
                .as_deref()
                .is_some_and(|d| d.contains("di9ozbzfi4"))
        );

        let m = msg(
            r#""type":"contacts","contacts":[{"name":{"formatted_name":"Barbara Johnson","first_name":"Barbara"},"phones":[{"phone":"+1 (940) 555-1234","wa_id":"19405551234","type":"MOBILE"}]}]"#,
        );
        assert_eq!(m.kind, MessageKind::Contacts);
        assert!(
            m.details
                .as_deref()
                .is_some_and(|d| d.starts_with('[') && d.contains("19405551234"))
        );

        let m = one_message(&hook(
            r#""messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgB=","timestamp":"1739321024","type":"system","system":{"body":"User Sheena Nelson changed from 16505551234 to 12195555358","wa_id":"12195555358","type":"user_changed_number"}}]"#,
        ));
        assert_eq!(m.kind, MessageKind::System);
        assert!(m.text.as_deref().is_some_and(|t| t.contains("12195555358")));
        assert!(
            m.details
                .as_deref()
                .is_some_and(|d| d.contains("user_changed_number"))
        );
        assert_eq!(m.sender.name, None);
    }

    #[test]
    fn media_hashes_become_hex() {
        let hex = "81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3";
        assert_eq!(sha256_hex(hex.to_uppercase()), hex);
        assert_eq!(
            sha256_hex("gdO9io20hoyVIO1HGG6LfFeJ5h/3n3+DS+aVC4CKkNM=".into()),
            hex
        );
        assert_eq!(
            sha256_hex("gdO9io20hoyVIO1HGG6LfFeJ5h_3n3-DS-aVC4CKkNM".into()),
            hex
        );
        assert_eq!(sha256_hex("not a hash".into()), "not a hash");
        assert_eq!(sha256_hex("c2hvcnQ=".into()), "c2hvcnQ=");
        assert_eq!(sha256_hex(String::new()), "");
    }

    #[test]
    fn reaction_removal_has_no_text() {
        let m = msg(
            r#""type":"reaction","reaction":{"message_id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3QTYz"}"#,
        );
        assert_eq!(m.kind, MessageKind::Reaction);
        assert_eq!(m.text, None);
        assert_eq!(
            m.reply_to.as_deref(),
            Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3QTYz")
        );
    }

    #[test]
    fn unsupported_and_unknown_types_keep_the_message_in_details() {
        let m = msg(
            r#""type":"unsupported","errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","error_data":{"details":"Message type is currently not supported."}}],"unsupported":{"type":"edit"}"#,
        );
        assert_eq!(m.kind, MessageKind::Unsupported);
        let d = m.details.expect("details");
        assert!(d.contains("131051") && d.contains("edit"));
        let m = msg(r#""type":"poll_creation","poll_creation":{"name":"Lunch?"}"#);
        assert_eq!(m.kind, MessageKind::Unsupported);
        assert!(m.details.as_deref().is_some_and(|d| d.contains("Lunch?")));
        // A known type whose payload is missing is kept raw too.
        let m = msg(r#""type":"image""#);
        assert_eq!(m.kind, MessageKind::Image);
        assert!(m.media.is_empty() && m.details.is_some());
        let m = msg(r#""type":"location","location":{"name":"nowhere"}"#);
        assert_eq!(m.kind, MessageKind::Location);
        assert!(m.location.is_none() && m.details.is_some());
    }

    #[test]
    fn senders_without_phone_or_contact() {
        // No contacts at all and only a user id.
        let m = one_message(&hook(
            r#""messages":[{"from_user_id":"US.13491208655302741918","id":"wamid.X","timestamp":1749416383,"type":"text","text":{"body":"hi"}}]"#,
        ));
        assert_eq!(m.sender.phone, None);
        assert_eq!(m.sender.user_id.as_deref(), Some("US.13491208655302741918"));
        assert_eq!(m.sender.name, None);
        assert_eq!(m.timestamp, 1749416383, "numeric timestamps are read too");
        // Two messages, two contacts: each gets its own.
        let events = parse(hook(
            r#""contacts":[{"profile":{"name":"A"},"wa_id":"111"},{"profile":{"name":"B"},"wa_id":"222","user_id":"US.2"}],"messages":[{"from":"222","id":"wamid.1","timestamp":"1","type":"text","text":{"body":"b"}},{"from":"111","id":"wamid.2","timestamp":"2","type":"text","text":{"body":"a"}},{"from_user_id":"US.2","id":"wamid.3","timestamp":"3","type":"text","text":{"body":"b2"}},{"from":"333","id":"wamid.4","timestamp":"4","type":"text","text":{"body":"c"}}]"#,
        ).as_bytes())
        .expect("parses");
        let names: Vec<Option<&str>> = messages(&events)
            .iter()
            .map(|m| m.sender.name.as_deref())
            .collect();
        assert_eq!(names, [Some("B"), Some("A"), Some("B"), None]);
        assert_eq!(messages(&events)[2].sender.phone.as_deref(), Some("222"));
    }

    #[test]
    fn statuses_read_recipients_and_skip_unknown_states() {
        let events = parse(hook(
            r#""contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234","user_id":"US.134"}],"statuses":[{"id":"wamid.S1","status":"delivered","timestamp":"1750263773","recipient_id":"16505551234","recipient_user_id":"US.134","pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}},{"id":"wamid.S2","status":"played","timestamp":"1750263774","recipient_user_id":"US.134"},{"id":"wamid.S3","status":"deleted","timestamp":"1"},{"id":"wamid.S4","status":"sent","timestamp":"2","recipient_id":"120363043968066561@g.us","recipient_type":"group"},{"status":"read"},{"id":"wamid.S5","status":"failed","timestamp":"3","recipient_id":"16505551234","errors":[{"code":131026,"title":"Message undeliverable"}]},{"id":"wamid.S6","status":"failed","timestamp":"4","recipient_id":"16505551234","errors":[{"title":"no code"}]}]"#,
        ).as_bytes())
        .expect("parses");
        let st = statuses(&events);
        assert_eq!(st.len(), 5);
        let r = st[0].recipient.as_ref().expect("recipient");
        assert_eq!(
            (r.phone.as_deref(), r.user_id.as_deref(), r.name.as_deref()),
            (Some("16505551234"), Some("US.134"), Some("Sheena Nelson"))
        );
        assert_eq!(st[1].state, DeliveryState::Played);
        assert_eq!(
            st[1].recipient.as_ref().and_then(|r| r.phone.as_deref()),
            Some("16505551234")
        );
        assert!(st[2].recipient.is_none(), "group statuses have no person");
        let e = st[3].error.as_ref().expect("error");
        assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Permanent, "131026"));
        assert_eq!(e.message, "Message undeliverable");
        assert_eq!(
            st[4].error.as_ref().map(|e| e.code.as_str()),
            Some("unknown")
        );
        let ignored = events
            .iter()
            .filter(|e| matches!(e, InboundEvent::Ignored(_)))
            .count();
        assert_eq!(ignored, 2);
    }

    #[test]
    fn change_level_errors_are_recorded() {
        let events = parse(hook(
            r#""errors":[{"code":131000,"title":"Something went wrong","message":"Something went wrong","error_data":{"details":"Unknown error"}}]"#,
        ).as_bytes())
        .expect("parses");
        assert!(
            matches!(events.as_slice(), [InboundEvent::Ignored(d)] if d.contains("131000") && d.contains("106540352242922")),
            "{events:?}"
        );
    }

    #[test]
    fn other_objects_are_ignored_and_garbage_is_an_error() {
        let events = parse(br#"{"object":"page","entry":[]}"#).expect("parses");
        assert!(matches!(events.as_slice(), [InboundEvent::Ignored(_)]));
        for garbage in [
            &b"not json"[..],
            b"{}",
            b"[]",
            b"",
            b"null",
            br#"{"object":7}"#,
        ] {
            assert!(
                parse(garbage).is_err(),
                "{:?}",
                String::from_utf8_lossy(garbage)
            );
        }
        for odd in [
            r#"{"object":"whatsapp_business_account"}"#,
            r#"{"object":"whatsapp_business_account","entry":null}"#,
            r#"{"object":"whatsapp_business_account","entry":[7,{"changes":"x"}]}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{}}]}]}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages"}]}]}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{}}]}]}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":1065},"messages":[{"type":"text"},5,{"id":7}]}}]}]}"#,
            r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"account_update","value":{"phone_number":"15550783881","event":"VERIFIED_ACCOUNT"}}]}]}"#,
        ] {
            let events = parse(odd.as_bytes()).expect(odd);
            assert!(
                !events.is_empty() && events.iter().all(|e| matches!(e, InboundEvent::Ignored(_))),
                "{odd}: {events:?}"
            );
        }
    }

    #[test]
    fn one_odd_part_does_not_hide_the_rest() {
        let good = r#"{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[{"from":"16505551234","id":"wamid.G","timestamp":"1749416383","type":"text","text":{"body":"still here"}}]}}"#;
        let bodies = [
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[7,{{"changes":[{good}]}}]}}"#
            ),
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":5}},{good}]}}]}}"#
            ),
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"changes":"x"}},{{"changes":[{good}]}}]}}"#
            ),
        ];
        for body in bodies {
            let events = parse(body.as_bytes()).expect("parses");
            let texts: Vec<_> = messages(&events).iter().map(|m| m.text.clone()).collect();
            assert_eq!(texts, [Some("still here".to_string())], "{body}");
            assert_eq!(events.len(), 2, "{body}: {events:?}");
        }
        // One bad message among good ones.
        let events = parse(hook(
            r#""messages":[{"id":7},{"from":"1","id":"wamid.OK","timestamp":"1","type":"text","text":{"body":"ok"}},"x"]"#,
        ).as_bytes())
        .expect("parses");
        assert_eq!(messages(&events).len(), 1);
        assert_eq!(events.len(), 3);
    }

    #[test]
    fn account_updates_that_end_or_pause_an_account_become_account_events() {
        let hook = |waba_info: &str, event: &str| {
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","time":1739321024,"changes":[{{"field":"account_update","value":{{"event":"{event}"{waba_info}}}}}]}}]}}"#
            )
        };
        let removed = parse(
            hook(
                r#","waba_info":{"waba_id":"555","owner_business_id":"777"}"#,
                "PARTNER_REMOVED",
            )
            .as_bytes(),
        )
        .expect("parse");
        assert!(
            matches!(
                &removed[..],
                [InboundEvent::Account(a)] if a.account_id == "555"
                    && a.change == AccountChange::AccessRemoved
                    && a.details == "account_update PARTNER_REMOVED"
                    && a.occurred_at == Some(1739321024)
            ),
            "{removed:?}"
        );
        // Without waba_info the entry id names the account.
        let uninstalled = parse(hook("", "PARTNER_APP_UNINSTALLED").as_bytes()).expect("parse");
        assert!(matches!(
            &uninstalled[..],
            [InboundEvent::Account(a)] if a.account_id == "102290129340398"
                && a.change == AccountChange::AccessRemoved
        ));
        let restricted = parse(hook("", "ACCOUNT_RESTRICTION").as_bytes()).expect("parse");
        assert!(
            matches!(&restricted[..], [InboundEvent::Account(a)] if a.change == AccountChange::Restricted)
        );
        let back = parse(hook("", "ACCOUNT_RECONNECTED").as_bytes()).expect("parse");
        assert!(
            matches!(&back[..], [InboundEvent::Account(a)] if a.change == AccountChange::Reinstated)
        );
        let other = parse(hook("", "VOLUME_BASED_PRICING_TIER_UPDATE").as_bytes()).expect("parse");
        assert!(
            matches!(&other[..], [InboundEvent::Ignored(d)] if d == "account_update VOLUME_BASED_PRICING_TIER_UPDATE")
        );
    }

    #[test]
    fn account_events_are_dated_by_their_entry() {
        let hook = |time: &str| {
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398"{time},"changes":[{{"field":"account_update","value":{{"event":"ACCOUNT_RESTRICTION"}}}}]}}]}}"#
            )
        };
        let occurred = |time: &str| match &parse(hook(time).as_bytes()).expect("parse")[..] {
            [InboundEvent::Account(a)] => a.occurred_at,
            other => panic!("{other:?}"),
        };
        assert_eq!(occurred(r#","time":1739321024"#), Some(1739321024));
        // Meta writes most times as numbers; a numeric string is read too.
        assert_eq!(occurred(r#","time":"1739321024""#), Some(1739321024));
        // Absent, zero or unreadable: no date (the host then does not judge the event's age).
        for time in [
            "",
            r#","time":0"#,
            r#","time":null"#,
            r#","time":-5"#,
            r#","time":1.5"#,
            r#","time":"soon""#,
            r#","time":{"odd":1}"#,
        ] {
            assert_eq!(occurred(time), None, "{time}");
        }
        // Each entry dates its own changes, on the part-by-part path too (the second entry's
        // changes are not a list, which the one-pass read refuses).
        let body = r#"{"object":"whatsapp_business_account","entry":[
            {"id":"1","time":100,"changes":[{"field":"account_update","value":{"event":"ACCOUNT_RESTRICTION"}}]},
            {"id":"2","time":200,"changes":[{"field":"account_update","value":{"event":"ACCOUNT_REINSTATED"}}]},
            {"id":"3","changes":{"odd":true}}
        ]}"#;
        let events = parse(body.as_bytes()).expect("parse");
        let dated: Vec<(&str, Option<u64>)> = events
            .iter()
            .filter_map(|e| match e {
                InboundEvent::Account(a) => Some((a.account_id.as_str(), a.occurred_at)),
                _ => None,
            })
            .collect();
        assert_eq!(dated, [("1", Some(100)), ("2", Some(200))]);
    }

    #[test]
    fn whatsapp_messages_edit_nothing() {
        let m = one_message(&hook(
            r#""messages":[{"from":"16505551234","id":"wamid.E1","timestamp":"5","type":"text","text":{"body":"hi"}}]"#,
        ));
        assert_eq!(m.edits, None);
    }

    #[test]
    fn number_and_user_id_changes_move_the_contact_after_the_system_message() {
        let body = hook(
            r#""messages":[{"from":"16505551234","from_user_id":"US.OLD","id":"wamid.SYS1","timestamp":"1739321024","type":"system","system":{"body":"User Sheena Nelson changed from 16505551234 to 12195555358","wa_id":"12195555358","user_id":"US.NEW","previous_user_id":"US.OLD","type":"user_changed_number"}}]"#,
        );
        let events = parse(body.as_bytes()).expect("parse");
        assert!(matches!(&events[0], InboundEvent::Message(m) if m.kind == MessageKind::System));
        let InboundEvent::ContactChanged(c) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(
            (c.previous.phone.as_deref(), c.previous.user_id.as_deref()),
            (Some("16505551234"), Some("US.OLD"))
        );
        assert_eq!(
            (c.current.phone.as_deref(), c.current.user_id.as_deref()),
            (Some("12195555358"), Some("US.NEW"))
        );
        // Other system messages move nobody.
        let other = hook(
            r#""messages":[{"from":"16505551234","id":"wamid.SYS2","timestamp":"1","type":"system","system":{"body":"x","type":"customer_identity_changed"}}]"#,
        );
        assert_eq!(parse(other.as_bytes()).expect("parse").len(), 1);
    }

    #[test]
    fn marketing_stops_and_resumes_become_preferences() {
        let body = hook(
            r#""contacts":[{"profile":{"name":"Sheena"},"wa_id":"16505551234"}],"user_preferences":[{"wa_id":"16505551234","detail":"User requested to stop marketing messages","category":"marketing_messages","value":"stop","timestamp":1731705721},{"wa_id":"16505551234","category":"marketing_messages","value":"resume","timestamp":1731705722},{"wa_id":"1","category":"other","value":"stop"}]"#,
        );
        let events = parse(body.as_bytes()).expect("parse");
        assert!(
            matches!(&events[0], InboundEvent::MarketingPreference(p) if p.stopped && p.contact.phone.as_deref() == Some("16505551234") && p.channel_address == "106540352242922")
        );
        assert!(matches!(&events[1], InboundEvent::MarketingPreference(p) if !p.stopped));
        assert!(matches!(&events[2], InboundEvent::Ignored(_)));
    }

    #[test]
    fn numeric_phone_number_ids_are_read() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":106540352242922},"messages":[{"from":"1","id":"wamid.N","timestamp":"5","type":"request_welcome"}]}}]}]}"#;
        assert_eq!(one_message(body).channel_address, "106540352242922");
    }

    #[test]
    fn never_panics_on_mutated_fixtures() {
        // Truncations and byte flips of every fixture: any result is fine, a panic is not.
        for name in [
            "text.json",
            "bench_1500.json",
            "image.json",
            "interactive_nfm_reply.json",
            "statuses_failed.json",
            "multi_entry.json",
            "template_status_update.json",
        ] {
            let body = std::fs::read(format!("{FIXTURES}{name}")).expect("fixture");
            for cut in (0..body.len()).step_by(7) {
                let _ = parse(&body[..cut]);
            }
            for i in (0..body.len()).step_by(3) {
                for b in [b'"', b'{', b']', b'0', b'\\', 0xff] {
                    let mut m = body.clone();
                    m[i] = b;
                    let _ = parse(&m);
                }
            }
        }
    }
}
