//! The one place `bindgen!` runs: host bindings for every supported interface version.
//!
//! Each released version gets its own module (`v0_1_0`, `v0_2_0`, …). The newest version's
//! types are the ones the rest of the host uses; [`super::since_v0_1_0`] converts the older
//! ones to them.

#![allow(missing_docs)]

/// `switchyard:plugin@0.1.0` (frozen).
pub mod v0_1_0 {
    /// The connector world.
    pub mod connector {
        wasmtime::component::bindgen!({
            world: "connector",
            path: "../wit/since_v0.1.0",
            imports: { "switchyard:plugin/egress.send": async },
            // Converted to the newest types through their serde form.
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

/// `switchyard:plugin@0.2.0`: the newest version, whose types the host uses.
pub mod v0_2_0 {
    /// The connector world.
    pub mod connector {
        wasmtime::component::bindgen!({
            world: "connector",
            path: "../wit/since_v0.2.0",
            imports: { "switchyard:plugin/egress.send": async },
            // Replies are stored as decided (content and fallback) until they are sent.
            additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
            exports: { default: async },
        });
    }

    /// The reply-policy world; shares the `types`, `egress` and `log` bindings of the
    /// connector world.
    pub mod reply_policy {
        wasmtime::component::bindgen!({
            world: "reply-policy",
            path: "../wit/since_v0.2.0",
            exports: { default: async },
            with: {
                "switchyard:plugin/types": super::connector::switchyard::plugin::types,
                "switchyard:plugin/egress": super::connector::switchyard::plugin::egress,
                "switchyard:plugin/log": super::connector::switchyard::plugin::log,
            },
        });
    }

    /// A reply policy that also exports `insights`; used for `analyze` when a policy has it.
    pub mod policy_with_insights {
        wasmtime::component::bindgen!({
            world: "policy-with-insights",
            path: "../wit/since_v0.2.0",
            exports: { default: async },
            with: {
                "switchyard:plugin/types": super::connector::switchyard::plugin::types,
                "switchyard:plugin/egress": super::connector::switchyard::plugin::egress,
                "switchyard:plugin/log": super::connector::switchyard::plugin::log,
            },
        });
    }
}

pub use v0_2_0::connector::switchyard::plugin::{egress, log, secrets, types};
