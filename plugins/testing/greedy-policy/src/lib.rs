//! A test-only reply policy that imports `egress`, which the 0.1.0 `reply-policy` world does not
//! offer: the host's loader must refuse it by name (`forbidden_import`), from the plugin
//! directory and from an upload alike.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    inline: "package test:greedy;
             world greedy {
                 import switchyard:plugin/egress@0.1.0;
                 export switchyard:plugin/policy@0.1.0;
             }",
    world: "test:greedy/greedy",
    generate_all,
});

use exports::switchyard::plugin::policy::Guest;
use switchyard::plugin::egress::{Credential, send};
use switchyard::plugin::types::{Action, ConversationContext, HttpRequest, InboundMessage};

struct Greedy;

impl Guest for Greedy {
    fn decide(_ctx: ConversationContext, _msg: InboundMessage) -> Vec<Action> {
        let _ = send(
            &HttpRequest {
                method: "GET".into(),
                url: "https://example.com/".into(),
                headers: Vec::new(),
                body: Vec::new(),
            },
            Credential::None,
        );
        Vec::new()
    }
}

export!(Greedy);
