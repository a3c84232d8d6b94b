//! Write Switchyard plugins in plain Rust.
//!
//! - Bindings for `switchyard:plugin@0.3.0`, generated here: enable the `connector` or the
//!   `reply-policy` feature (one per plugin crate), implement [`Connector`] or [`Policy`], and
//!   export it with [`export_connector!`] or [`export_policy!`]. Your crate needs no
//!   `wit-bindgen` and no copy of the WIT.
//! - The host's interfaces as plain functions ([`host`]): secrets checked in the host, egress
//!   with credentials the host adds, structured logs.
//! - Helpers for what every connector does: reading webhooks ([`webhook`]), building provider
//!   requests ([`http`]), classifying provider errors ([`errors`]).
//! - A native test harness ([`testing`]): in `cargo test` the host's interfaces are answered by
//!   in-process fakes you configure, so a connector is unit-tested without a host or a network.

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

// The generated code names this crate by its public path, inside it as in plugins.
extern crate self as switchyard_sdk;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Generated bindings of the `connector` world.
#[cfg(feature = "connector")]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod connector_bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.3.0",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "switchyard_sdk::connector_bindings",
        runtime_path: "switchyard_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
    });
}

/// Generated bindings of the `reply-policy` world.
#[cfg(all(feature = "reply-policy", not(feature = "connector")))]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod policy_bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.3.0",
        world: "reply-policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "switchyard_sdk::policy_bindings",
        runtime_path: "switchyard_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
    });
}

/// Generated bindings of the `reply-policy` world, sharing the connector world's types (only
/// when a build unifies both features, e.g. clippy over a workspace).
#[cfg(all(feature = "reply-policy", feature = "connector"))]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod policy_bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.3.0",
        world: "reply-policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "switchyard_sdk::policy_bindings",
        runtime_path: "switchyard_sdk::__wit_bindgen::rt",
        with: {
            "switchyard:plugin/types@0.3.0": crate::connector_bindings::switchyard::plugin::types,
            "switchyard:plugin/egress@0.3.0": crate::connector_bindings::switchyard::plugin::egress,
            "switchyard:plugin/log@0.3.0": crate::connector_bindings::switchyard::plugin::log,
        },
    });
}

#[cfg(not(any(feature = "connector", feature = "reply-policy")))]
compile_error!("switchyard-sdk: enable the `connector` or the `reply-policy` feature");

/// Where the generated code shared by both worlds lives.
#[cfg(feature = "connector")]
use connector_bindings::switchyard::plugin as wit;
#[cfg(all(feature = "reply-policy", not(feature = "connector")))]
use policy_bindings::switchyard::plugin as wit;

/// Every data type of the interface (requests, events, messages, errors, …).
pub mod types {
    pub use crate::wit::egress::EgressError;
    pub use crate::wit::log::Level;
    #[cfg(feature = "connector")]
    pub use crate::wit::secrets::SecretError;
    pub use crate::wit::types::*;
}

/// What a connector implements: `verify`, `parse`, `send`, `check_credentials`, `connect`,
/// `disconnect`, `fetch_media`, `list_templates` (see `wit/since_v0.3.0/host.wit`).
#[cfg(feature = "connector")]
pub use connector_bindings::exports::switchyard::plugin::channel::Guest as Connector;

/// What a reply policy implements: `decide`.
#[cfg(feature = "reply-policy")]
pub use policy_bindings::exports::switchyard::plugin::policy::Guest as Policy;

/// Export a type implementing [`Connector`] as the component's `channel` interface.
#[cfg(feature = "connector")]
#[macro_export]
macro_rules! export_connector {
    ($t:ident) => {
        // Only in the component: natively (tests) the export names are not valid symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::connector_bindings::__export_connector_world!($t with_types_in $crate::connector_bindings);
    };
}

/// Export a type implementing [`Policy`] as the component's `policy` interface.
#[cfg(feature = "reply-policy")]
#[macro_export]
macro_rules! export_policy {
    ($t:ident) => {
        // Only in the component: natively (tests) the export names are not valid symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::policy_bindings::__export_policy_world!($t with_types_in $crate::policy_bindings);
    };
}

pub mod errors;
pub mod host;
pub mod http;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod webhook;
