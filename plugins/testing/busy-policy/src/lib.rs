//! A test-only reply policy whose `decide` burns CPU, to prove that guests neither stall the
//! host's HTTP workers nor fail for time they spent waiting to be scheduled.
//!
//! Message text:
//! - `spin <n>`: run `n` million iterations of a loop the optimizer cannot remove, then answer
//!   nothing (a finite, deterministic amount of work);
//! - anything else: spin until the host's CPU deadline stops the call.

wit_bindgen::generate!({ path: "../../../wit/since_v0.1.0", world: "reply-policy" });

use exports::switchyard::plugin::policy::Guest;
use switchyard::plugin::types::{Action, ConversationContext, InboundMessage};

struct Busy;

#[inline(never)]
fn spin(millions: u64) -> u64 {
    let mut n: u64 = 0;
    for _ in 0..millions.saturating_mul(1_000_000) {
        n = core::hint::black_box(n.wrapping_add(1));
    }
    n
}

impl Guest for Busy {
    fn decide(_ctx: ConversationContext, msg: InboundMessage) -> Vec<Action> {
        let text = msg.text.unwrap_or_default();
        let millions = text
            .strip_prefix("spin ")
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        core::hint::black_box(spin(millions));
        Vec::new()
    }
}

export!(Busy);
