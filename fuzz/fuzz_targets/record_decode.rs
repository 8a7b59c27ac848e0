//! A log record's bytes, read as an event (`rezef_record::decode`): any bytes are an event or
//! an error, never a panic; and an event read from a record, written again in the record
//! format and in JSON, reads back equal.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|record: &[u8]| {
    let Ok(event) = rezef_record::decode(record) else {
        return;
    };
    // Known, open (docs/fuzzing.md): a protobuf record may hold a NaN or infinite number (a
    // priority, a confidence), which no check refuses, NaN is never equal to itself, and JSON
    // writes it as `null`. Passed over until the record check decides about them.
    let shown = format!("{event:?}");
    if shown.contains("NaN") || shown.contains("inf") {
        return;
    }
    let again = rezef_record::encode(&event);
    match rezef_record::decode(&again) {
        Ok(read) => assert_eq!(read, event, "the record written back reads back equal"),
        Err(e) => panic!("the record written back does not read: {e}\n{event:?}"),
    }
    let json = rezef_events::codec::encode(&event);
    match rezef_events::codec::decode(&json) {
        Ok(read) => assert_eq!(read, event, "its JSON reads back equal"),
        Err(e) => panic!("its JSON does not read: {e}\n{event:?}"),
    }
});
