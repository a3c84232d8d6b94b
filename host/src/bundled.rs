//! The plugins built from `plugins/` by the build script: bundled ones are embedded in the
//! binary; test-only ones are files in the build directory, listed for the tests.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// The packed bytes of a bundled plugin, by name.
pub fn plugin(name: &str) -> Option<&'static [u8]> {
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The path of a test-only plugin built with this binary, by name.
#[doc(hidden)]
pub fn testing_plugin(name: &str) -> Option<&'static str> {
    TESTING.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}
