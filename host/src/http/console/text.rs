//! Every word the console shows, in one place, so it can be translated: a translation is
//! another [`Text`] value. `{name}` marks where [`fill`] puts a value.

/// The version of the consent disclosure below; the ledger records it with each grant.
pub const CONSENT_VERSION: &str = "2026-12";

macro_rules! texts {
    ($($name:ident = $en:expr;)*) => {
        /// The console's words in one language (each field is named for where it shows).
        #[allow(missing_docs)]
        pub struct Text { $(pub $name: &'static str,)* }

        /// English.
        pub static EN: Text = Text { $($name: $en,)* };
    };
}

texts! {
    brand = "Switchyard";
    skip_to_content = "Skip to content";
    nav_label = "Main";
    nav_numbers = "Numbers";
    nav_inbox = "Inbox";
    nav_notifications = "Notifications";
    nav_consent = "Consent";
    nav_people = "People";
    nav_account = "Plan & account";
    nav_tenants = "Businesses";
    nav_partners = "Partners";
    nav_plugins = "Plugins";
    nav_jobs = "Dead jobs";
    nav_health = "Health";
    operator = "Operator";
    breadcrumb = "Breadcrumb";
    unread = "unread:";
    sign_out = "Sign out";
    live_paused = "Live updates paused. Reload the page to resume.";
    error_title = "Something is not right";
    error_detail = "HTTP {status} · {code}";
    back_home = "Back to the start page";
    not_found = "There is no such page.";

    sign_in_title = "Sign in";
    sign_in = "Sign in";
    email = "Email";
    password = "Password";
    new_password = "New password";
    password_rules = "12 characters or more; not your email.";
    forgot_link = "Forgot your password?";
    forgot_title = "Reset your password";
    forgot_hint = "We will mail you a link to set a new password.";
    forgot_send = "Mail me a link";
    forgot_done = "If the address has an account, a link is on its way.";
    reset_title = "Set a new password";
    reset_save = "Save and sign in";
    invitation_title = "Join your team";
    invitation_hint = "Choose your name and a password. If you already have an account, give its password.";
    your_name = "Your name";
    your_name_hint = "New accounts only.";
    invitation_accept = "Accept the invitation";
    home_title = "Where to?";
    home_none = "You do not belong to any business or partner yet. Ask for an invitation.";
    kind_business = "Business";
    kind_partner = "Partner";

    numbers_title = "Numbers";
    whatsapp_business = "WhatsApp Business";
    connect_number = "Connect a number";
    no_numbers = "No number is connected yet.";
    number_name = "Name";
    number_name_example = "Sales Support";
    connector = "Connector";
    token_expires = "Access expires";
    open = "Open";
    reconnect = "Reconnect";
    state_live = "Live";
    state_inactive = "Inactive";
    state_connecting = "Connecting…";
    state_expired = "Expired";
    state_error = "Error";
    state_disconnected = "Disconnected";
    state_not_connected = "Not connected";
    fix_expired = "The provider no longer accepts this number's access. Reconnect it: contacts and history stay.";
    fix_error = "The provider refused this number's credentials. Check them with Verify, or connect again.";
    fix_connecting = "Still connecting. If this lasts more than a minute, reload the page; unfinished attempts are reset automatically.";
    connect_title = "Connect a number";
    connect_lead = "Connect a WhatsApp Business number through Meta's own sign-in, or enter a provider's credentials.";
    no_channels = "Your plan includes no channel to connect. Ask your provider.";
    consent_summary = "What you agree to";
    consent_points = "We receive your customers' messages on this number and send your replies, as your reply policy and your team decide.\nThe access token is encrypted at rest and never shown again, to anyone.\nWe keep a consent record: who connected, when, from where, and this document's version.\nYou can disconnect at any time: the token is revoked and destroyed; your history stays until you delete it.";
    consent_tick = "I have read this and agree, on behalf of the business.";
    embedded_title = "WhatsApp Business through Meta";
    embedded_lead = "A window on Meta's own site opens: pick your business, your WhatsApp Business Account and the number, then allow access. We do not see what you type there.";
    embedded_button = "Connect WhatsApp Business";
    signup_cancelled = "The sign-in was closed before it finished. Nothing was connected; you can try again.";
    redirect_title = "Or sign in with Facebook in this window";
    redirect_lead = "For browsers that block pop-ups: this page moves to Facebook and comes back here.";
    redirect_button = "Continue with Facebook";
    manual_title = "Enter credentials: {connector}";
    senders_button = "Find my WhatsApp senders";
    senders_hint = "Uses the Account SID and auth token above to ask Twilio for the account's WhatsApp senders; pick one in the sender field, or type it.";
    senders_none = "Twilio lists no WhatsApp sender on this account. Type the sender (whatsapp:+…), or use the sandbox's.";
    senders_found = "{count} senders found: pick one in the sender field.";
    senders_offline = "(not online)";
    twilio_hint = "Your number as Twilio shows it, e.g. whatsapp:+14155238886. In Twilio's sandbox, each tester first sends the sandbox's join keyword (\"join <two-words>\") to the sandbox number; set the sandbox's \"When a message comes in\" URL to this number's webhook URL after connecting.";
    telegram_hint = "Create a bot with @BotFather and paste its token. We register the webhook with Telegram for you.";
    no_endpoint = "This connector needs a provider app that your platform has not set up yet. Ask your provider.";
    endpoint = "Provider app";
    optional = "(optional)";
    secret_hint = "Stored encrypted; never shown again.";
    connect_button = "Connect";
    pick_title = "Choose a number";
    pick_lead = "Meta found these numbers. Choose the one to connect.";
    pick_done = "The number is connected.";
    pick_failed = "Connecting did not finish:";
    try_again = "Try again";
    connect_failed = "Connecting did not finish. Start again from the business's Numbers page.";
    connect_failed_code = "Connecting did not finish (code: {code}). Start again from the business's Numbers page.";
    signup_done_title = "Connecting";
    signup_done = "You can close this window.";

    status = "Status";
    address = "Address";
    account = "Provider account";
    policy = "Reply policy";
    policy_default = "The business's default";
    webhook_url = "Webhook URL";
    copy = "Copy";
    copied = "Copied";
    connected_at = "Connected";
    verify = "Verify";
    verified = "Checked with the provider.";
    edit_number = "Edit";
    active = "Active";
    active_hint = "When inactive, messages are still received and kept, but no policy answers and nothing is sent.";
    save = "Save";
    policy_plugin = "Policy";
    policy_config = "Its settings (JSON)";
    policy_use_default = "Use the business's default policy";
    access_title = "Who may reach the reply policy";
    access_legend = "Access";
    access_open = "Anyone who writes";
    access_email = "Customers who proved their email with /login";
    access_sharing = "Only the emails below (others may ask for access)";
    access_shared = "Shared with (one email per line)";
    templates_title = "Message templates";
    templates_hint = "What the provider approved; only approved ones can be sent once the customer-service window has closed.";
    no_templates_synced = "None synced yet.";
    templates_sync = "Sync from the provider";
    category = "Category";
    test_send = "Test send";
    test_send_hint = "Sends one message to a phone you own. Recorded in the consent ledger. The provider's own rules apply (WhatsApp: the person must have written in the last 24 hours).";
    test_to = "To (E.164)";
    message = "Message";
    send = "Send";
    test_sent = "Sent.";
    disconnect = "Disconnect";
    disconnect_lead = "Disconnecting this number:";
    disconnect_points = "Revokes the access at the provider, where it allows.\nOverwrites the encrypted token in our database (crypto-shred).\nStops new messages reaching the inbox.\nKeeps the existing conversations; delete the account to remove every trace.\nYou can connect it again at any time.";
    disconnect_sure = "I understand; disconnect this number.";

    inbox_title = "Inbox";
    filters = "Filters";
    any = "Any";
    apply = "Apply";
    search = "Search";
    conversation_state = "State";
    state_open = "Open";
    state_closed = "Closed";
    state_archived = "Archived";
    owner = "Answered by";
    owner_policy = "AI / policy";
    owner_people = "People";
    assignee = "Assigned to";
    assigned_me = "Me";
    assigned_none = "No one";
    no_conversations = "No conversation matches.";
    unknown_contact = "Unknown contact";
    messages = "Messages";
    attachment = "Attachment";
    you = "You";
    author_host = "Switchyard";
    author_teammate = "A teammate";
    author_program = "A program (API key)";
    author_policy = "The reply policy";
    author_echo = "Sent from another app on the number";
    referral_ad = "Started from an ad:";
    referral_post = "Started from a post:";
    referral_untitled = "(no headline)";
    reply = "Reply";
    sent = "Sent.";
    window_closes = "The customer-service window closes";
    window_closed = "The customer-service window has closed: only an approved template can be sent.";
    template_parameters = "Template {name} ({language}): parameters, one per line";
    send_template = "Send template";
    no_templates = "No approved template. Sync templates on the number's page.";
    cannot_send = "Nothing can be sent in this conversation now.";
    phone = "Phone";
    handoff_reason = "Handed to people because";
    actions = "Actions";
    close = "Close";
    archive = "Archive";
    reopen = "Reopen";
    ai_off = "Take over (AI off)";
    ai_on = "Give back to AI";
    assign_me = "Assign to me";
    unassign = "Unassign";
    delete_conversation = "Delete conversation";
    delete_conversation_lead = "Deletes this conversation and its messages and media for good.";
    delete_sure = "I understand; delete it.";
    delete = "Delete";
    insights = "Insights";
    insights_none = "No insights yet.";
    insights_generate = "Generate insights";
    insights_done = "Insights updated.";
    insights_stale = "Newer messages arrived since; generate again to include them.";
    sentiment = "Sentiment";
    summary = "Summary";
    language = "Language";
    computed = "Computed";

    notifications_title = "Notifications";
    mark_all_read = "Mark all as read";
    mark_read = "Mark as read";
    no_notifications = "Nothing new.";

    consent_title = "Consent ledger";
    consent_lead = "Every grant, revocation and test send, in order. Each row is chained to the one before by its hash, so any edit shows.";
    chain_verified = "The chain verifies: no row was changed or removed.";
    chain_broken = "The chain does not verify: a row was changed or removed. Export the ledger and contact your provider.";
    export_ledger = "Export (JSON)";
    when = "When";
    action = "Action";
    scopes = "Scopes";
    number = "Number";
    who = "Who";
    document = "Document";
    whole_business = "Whole business";
    no_consent = "No consent recorded yet.";

    people_title = "People";
    name = "Name";
    role = "Role";
    since = "Since";
    invite_title = "Invite someone";
    invite = "Invite";
    invited = "Invitation mailed.";
    pending_invitations = "Waiting for an answer";
    expires = "expires";
    withdraw = "Withdraw";
    role_owner = "Owner";
    role_admin = "Admin";
    role_agent = "Agent";
    role_viewer = "Viewer";
    role_member = "Member";

    account_title = "Plan & account";
    plan_title = "Plan and usage";
    plan = "Plan";
    no_plan = "None (unlimited)";
    unlimited = "unlimited";
    used_of = "{used} of {limit}";
    numbers_used = "Numbers";
    messages_used = "Messages this month";
    pricing_categories = "By pricing category this month";
    pricing_line = "{category}: {messages} ({billable} charged)";
    channels = "Channels";
    ai_policies = "AI policies";
    yes = "Yes";
    no = "No";
    keys_title = "API keys";
    keys_hint = "Keys are for programs. Create them through the API; they are shown once, there.";
    created = "created";
    revoke = "Revoke";
    revoke_confirm = "Revoke this key? Programs using it stop working at once.";
    revoked = "revoked";
    delete_account = "Delete your account & data";
    delete_account_lead = "Disconnects every number and erases contacts, conversations, messages and media. The consent ledger stays as the legal record. This cannot be undone.";
    delete_account_confirm = "Type the business's name to confirm: {name}";

    tenants_title = "Businesses";
    create_tenant = "Add a business";
    business_name = "Business name";
    tenant_created = "Business added. Invite its owner below.";
    no_tenants = "No business yet.";
    suspended = "Suspended";
    active_tenant = "Active";
    tenant_id = "Id";
    messages_in_out = "Messages in / out";
    numbers_by_state = "Numbers";
    reinstate = "Reinstate";
    suspend = "Suspend";
    suspend_confirm = "Suspend {name}? Its webhooks are refused and its people cannot act until reinstated.";
    invite_owner = "Invite its owner";
    plugins_title = "Plugins";
    operator_sign_in_title = "Operator sign-in";
    operator_sign_in_hint = "The operator token this host was started with (SWITCHYARD_OPERATOR_TOKEN). The session lasts 8 hours.";
    operator_token = "Operator token";
    partners_title = "Partners";
    create_partner = "Add a partner";
    partner_created = "Partner added. Invite its owner below.";
    partner_name = "Partner name";
    namespace = "Plugin namespace";
    namespace_hint = "Its plugins are named <namespace>-…; 2 to 31 lowercase letters and digits.";
    no_partners = "No partner yet.";
    upload_plugin = "Upload a plugin";
    plugin_file = "Component (.wasm, packed by `switchyard plugin pack`)";
    plugin_file_hint = "Checked, compiled and linked before it is stored; promote it to run it.";
    upload = "Upload";
    publisher = "Publisher";
    promoted = "Running";
    previous = "Previous";
    auto_rollback = "Rolls back by itself";
    rollback_confirm = "Roll {name} back to its previous version?";
    roll_back = "Roll back";
    versions_of = "Versions of {name}";
    version = "Version";
    source = "Source";
    signature = "Signature";
    egress = "Hosts it may reach";
    requested = "Requested:";
    grant = "Grant";
    promote = "Promote";
    delete_version_confirm = "Delete {name} {version}?";
    jobs_title = "Dead jobs";
    jobs_lead = "Jobs that failed every attempt. Replaying one runs it again from the start.";
    no_dead_jobs = "No dead job.";
    job = "Job";
    kind = "Kind";
    attempts = "Attempts";
    last_error = "Last error";
    replay = "Replay";
    health_title = "Health";
    yours = "yours";
}

/// `template` with each `{name}` replaced by its value.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// A connector setting's or secret's label: known names in words, others as written.
pub fn setting_label(name: &str) -> String {
    let known = match name {
        "phone_number_id" => Some("Phone number ID"),
        "waba_id" => Some("WhatsApp Business Account ID"),
        "display_phone_number" => Some("Display number"),
        "access_token" => Some("Access token"),
        "account_sid" => Some("Account SID"),
        "auth_token" => Some("Auth token"),
        "from" | "sender" => Some("Sender (whatsapp:+…)"),
        "bot_token" | "bot-token" => Some("Bot token"),
        "bot_username" => Some("Bot username (ends in \"bot\")"),
        "channel_address" => Some("Address"),
        "display_name" => Some("Display name"),
        "account_id" => Some("Account"),
        _ => None,
    };
    match known {
        Some(k) => k.to_string(),
        None => {
            let words = name.replace(['_', '-'], " ");
            let mut chars = words.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_labels() {
        assert_eq!(
            fill(EN.used_of, &[("used", "3"), ("limit", "10")]),
            "3 of 10"
        );
        assert_eq!(setting_label("waba_id"), "WhatsApp Business Account ID");
        assert_eq!(setting_label("api_base_url"), "Api base url");
    }
}
