//! A published `rezef.v1.Event` (any protobuf bytes) checked into a domain event
//! (`rezef_record::event_from_proto`, what `Publish` does): an event or the reasons it is
//! invalid, never a panic. An event that passes is valid by the domain's rules, checks again
//! to itself from its own `rezef.v1` form, and is stored and read back unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use rezef_proto::v1;
use rezef_record::{event_from_proto, event_to_proto};

fuzz_target!(|message: &[u8]| {
    let Ok(message) = v1::Event::decode(message) else {
        return;
    };
    let event = match event_from_proto(message) {
        Ok(event) => event,
        Err(violations) => {
            assert!(!violations.is_empty(), "a refusal names its reasons");
            return;
        }
    };
    assert_eq!(event.validate(), Ok(()), "{event:?}");
    assert_eq!(
        event_from_proto(event_to_proto(&event, None)).as_ref(),
        Ok(&event),
        "checking an event's own form gives it back"
    );
    let record = rezef_record::encode(&event);
    match rezef_record::decode(&record) {
        Ok(read) => assert_eq!(read, event, "the stored event reads back equal"),
        Err(e) => panic!("the stored event does not read: {e}\n{event:?}"),
    }
});
