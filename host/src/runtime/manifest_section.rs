//! Writing the manifest custom section; shared with `build.rs`, so it uses nothing but `std`.

/// Name of the top-level custom section that carries a plugin's manifest (JSON).
pub const SECTION_NAME: &str = "switchyard-manifest";

/// Append a top-level custom section `name` with `payload` to a wasm module or component.
pub fn append_custom_section(wasm: &mut Vec<u8>, name: &str, payload: &[u8]) {
    let mut name_and_payload = Vec::with_capacity(name.len() + payload.len() + 5);
    push_leb128(&mut name_and_payload, name.len());
    name_and_payload.extend_from_slice(name.as_bytes());
    name_and_payload.extend_from_slice(payload);
    wasm.push(0); // custom section id
    push_leb128(wasm, name_and_payload.len());
    wasm.extend_from_slice(&name_and_payload);
}

fn push_leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
