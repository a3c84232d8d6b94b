//! The one place `bindgen!` runs: host bindings for every supported interface version.
//!
//! Each released version gets its own module (`v0_1_0`, `v0_2_0`, …). The newest version's
//! types are the ones the rest of the host uses; [`super::since_v0_1_0`] and
//! [`super::since_v0_2_0`] convert the older ones to them.

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

/// `switchyard:plugin@0.2.0` (frozen).
pub mod v0_2_0 {
    /// The connector world.
    pub mod connector {
        wasmtime::component::bindgen!({
            world: "connector",
            path: "../wit/since_v0.2.0",
            imports: { "switchyard:plugin/egress.send": async },
            // Converted to the newest types through their serde form.
            additional_derives: [serde::Serialize, serde::Deserialize],
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

/// `switchyard:plugin@0.3.0` (frozen): the newest version, whose types the host uses.
pub mod v0_3_0 {
    /// The connector world.
    pub mod connector {
        wasmtime::component::bindgen!({
            world: "connector",
            path: "../wit/since_v0.3.0",
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
            path: "../wit/since_v0.3.0",
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
            path: "../wit/since_v0.3.0",
            exports: { default: async },
            with: {
                "switchyard:plugin/types": super::connector::switchyard::plugin::types,
                "switchyard:plugin/egress": super::connector::switchyard::plugin::egress,
                "switchyard:plugin/log": super::connector::switchyard::plugin::log,
            },
        });
    }
}

pub use v0_3_0::connector::switchyard::plugin::{egress, log, secrets, types};

/// Convert between an older version's type and its newest counterpart through their serde
/// form: each newer record only adds optional fields or ones the older side drops.
pub(crate) fn convert<A: serde::Serialize, B: serde::de::DeserializeOwned>(
    a: &A,
) -> Result<B, String> {
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("converting between an older interface version and the newest: {e}"))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// Released interface versions are never edited: a change is a new `since_v…` folder. An
    /// edit here breaks every plugin built against the version.
    #[test]
    fn released_versions_are_never_edited() {
        let digest =
            |host: &str, types: &str| hex::encode(Sha256::digest(format!("{host}{types}")));
        assert_eq!(
            digest(
                include_str!("../../../wit/since_v0.1.0/host.wit"),
                include_str!("../../../wit/since_v0.1.0/types.wit"),
            ),
            "fb0d011f66c9a28968208519466f7812466fe1a80e2fc8713afc5df56cb15620",
            "wit/since_v0.1.0 is released"
        );
        assert_eq!(
            digest(
                include_str!("../../../wit/since_v0.2.0/host.wit"),
                include_str!("../../../wit/since_v0.2.0/types.wit"),
            ),
            "627e48723568a460a977e8afa524aa0ae1ff9060afb8abf6a8d8c8cad6fc6cd9",
            "wit/since_v0.2.0 is released"
        );
        assert_eq!(
            digest(
                include_str!("../../../wit/since_v0.3.0/host.wit"),
                include_str!("../../../wit/since_v0.3.0/types.wit"),
            ),
            "9d009c832e5281b147f4b95ea78e1d778c942fa0424779b66798193bc764330b",
            "wit/since_v0.3.0 is released"
        );
    }
}
