//! Any frame from a browser: decoded or refused with a readable reason,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twitter_search::wire::ClientMessage;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(error) = ClientMessage::parse(&text) {
        let reason = error.to_string();
        assert!(!reason.is_empty() && reason.len() < 400);
    }
});
