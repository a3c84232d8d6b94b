//! The one place `bindgen!` runs: host bindings for every supported interface version.
//!
//! Each released version gets its own module (`v0_1_0`, later `v0_2_0`, …). The newest version's
//! types are the ones the rest of the host uses; older versions convert to them here.

#![allow(missing_docs)]

/// `switchyard:plugin@0.1.0`.
pub mod v0_1_0 {
    /// The connector world.
    pub mod connector {
        wasmtime::component::bindgen!({
            world: "connector",
            path: "../wit/since_v0.1.0",
            imports: { "switchyard:plugin/egress.send": async },
            // Replies are stored as decided (content and fallback) until they are sent.
            additional_derives: [serde::Serialize, serde::Deserialize],
            exports: { default: async },
        });
    }

    /// The reply-policy world; shares the `types` and `log` bindings of the connector world.
    pub mod reply_policy {
        wasmtime::component::bindgen!({
            world: "reply-policy",
            path: "../wit/since_v0.1.0",
            exports: { default: async },
            with: {
                "switchyard:plugin/types": super::connector::switchyard::plugin::types,
                "switchyard:plugin/log": super::connector::switchyard::plugin::log,
            },
        });
    }
}

pub use v0_1_0::connector::switchyard::plugin::{egress, log, secrets, types};
