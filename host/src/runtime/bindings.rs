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

/// Conversions between an older version's `types` module and the newest for the types that
/// carry bytes (requests, responses, verdicts, media): fields move, or are cloned once, and never
/// pass through [`convert`], whose JSON holds a body as one number per byte (32 times its size).
macro_rules! byte_conversions {
    ($old:path) => {
        use $crate::runtime::bindings::types as new_types;
        use $old as old_types;

        /// A request in the older version's types (cloned once: the caller keeps its own).
        pub(crate) fn request_down(r: &new_types::HttpRequest) -> old_types::HttpRequest {
            old_types::HttpRequest {
                method: r.method.clone(),
                url: r.url.clone(),
                headers: r.headers.clone(),
                body: r.body.clone(),
            }
        }

        /// An older version's request in the newest types.
        pub(crate) fn request_up(r: old_types::HttpRequest) -> new_types::HttpRequest {
            new_types::HttpRequest {
                method: r.method,
                url: r.url,
                headers: r.headers,
                body: r.body,
            }
        }

        /// An older version's response in the newest types.
        pub(crate) fn response_up(r: old_types::HttpResponse) -> new_types::HttpResponse {
            new_types::HttpResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }
        }

        /// A response in the older version's types.
        pub(crate) fn response_down(r: new_types::HttpResponse) -> old_types::HttpResponse {
            old_types::HttpResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }
        }

        /// An older version's verdict in the newest types.
        pub(crate) fn verdict_up(v: old_types::Verdict) -> new_types::Verdict {
            match v {
                old_types::Verdict::Accept => new_types::Verdict::Accept,
                old_types::Verdict::AcceptWithResponse(r) => {
                    new_types::Verdict::AcceptWithResponse(response_up(r))
                }
                old_types::Verdict::Respond(r) => new_types::Verdict::Respond(response_up(r)),
                old_types::Verdict::Reject(r) => new_types::Verdict::Reject(new_types::Rejection {
                    status: r.status,
                    reason: r.reason,
                }),
            }
        }

        /// An older version's media bytes in the newest types.
        pub(crate) fn media_content_up(c: old_types::MediaContent) -> new_types::MediaContent {
            new_types::MediaContent {
                mime_type: c.mime_type,
                body: c.body,
            }
        }
    };
}
pub(crate) use byte_conversions;

/// Convert between an older version's type and its newest counterpart through their serde
/// form: each newer record only adds optional fields or ones the older side drops. Not for
/// types that carry bytes ([`byte_conversions`]).
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
            "5c46e276dead1e70ec45ecbc88054ae1ee7a7c27ba5a1a9387afd5e725507772",
            "wit/since_v0.3.0 is released"
        );
    }
}
