//! Records whose personal values are sealed (format `0x02`): crypto-shredding.
//!
//! An event's skeleton ([`rezef_events::personal::split`]) is stored as a record of the
//! other formats; its personal values are sealed beside it, one AEAD box per key (the key
//! of the customer or identity they belong to, from a [`KeyStore`]), with the event id and
//! the key id as associated data, so that a box cannot be moved to another event or key.
//!
//! ```text
//! 0x02 | boxes: u8 | per box: key id (16) | length: u32 LE | nonce and ciphertext | skeleton record
//! a box opens to: per value: slot: u16 LE | length: u32 LE | UTF-8
//! ```
//!
//! Reading with the keys puts the values back; a box whose key was destroyed (the customer
//! was forgotten) stays shut and the event reads erased (`Event::erased`). Reading without
//! the keys ([`crate::decode`]) gives the skeleton: what routing and measurement read.

use std::sync::Arc;

use rezef_events::personal::{self, Owner, Taken};
use rezef_events::{ChannelIdentity, CustomerRef, Event, TenantId};
use rezef_keys::{DataKey, KeyId, KeyStore, Nonces, Subject};

use crate::error::{Error, Result};

/// The format byte of a sealed record.
pub const SEALED: u8 = 0x02;

/// The key subject of a customer or identity: what forgetting names.
pub fn subject(tenant: &TenantId, owner: &CustomerRef) -> Subject {
    match owner {
        CustomerRef::Id(id) => Subject::customer(tenant.as_str(), id.as_str()),
        CustomerRef::Identity(identity) => identity_subject(tenant, identity),
    }
}

/// An identity's subject: `identity:<kind>:<index key>`, hashed in pieces.
fn identity_subject(tenant: &TenantId, identity: &ChannelIdentity) -> Subject {
    let kind = identity.kind().as_str();
    let network = identity.network().unwrap_or("");
    Subject::named(
        tenant.as_str(),
        &[
            "identity:",
            kind,
            ":",
            kind,
            ":",
            network,
            ":",
            identity.value(),
        ],
    )
}

/// Encodes events for the log with their personal values sealed, making the keys they
/// need (durably, once for the batch). Events with nothing personal are stored plain.
pub fn encode_all(events: Vec<Event>, keys: &dyn KeyStore) -> Result<Vec<Vec<u8>>> {
    // Each event split, its values naming their subject by its place in `subjects`.
    let mut subjects: Vec<Subject> = Vec::new();
    let mut split = Vec::with_capacity(events.len());
    for mut event in events {
        let customer = event
            .customer
            .as_ref()
            .map(|c| subject(&event.tenant_id, c));
        let taken = personal::split(&mut event);
        let mut values = Vec::with_capacity(taken.len());
        for Taken { slot, owner, value } in taken {
            let subject = match owner {
                Owner::Customer => customer.ok_or(Error::Sealed("a value of no customer"))?,
                Owner::Identity(identity) => identity_subject(&event.tenant_id, &identity),
                Owner::Journey(customer) => {
                    Subject::customer(event.tenant_id.as_str(), customer.as_str())
                }
            };
            if subjects.last() != Some(&subject) {
                subjects.push(subject);
            }
            values.push((subjects.len() - 1, slot, value));
        }
        split.push((event, values));
    }
    let keys = keys.keys_for(&subjects).map_err(Error::Keys)?;
    let mut sealer = Sealer {
        nonces: Nonces::new(),
        aad: Vec::new(),
    };
    split
        .into_iter()
        .map(|(skeleton, values)| sealer.record(&skeleton, values, &keys))
        .collect()
}

/// Writes sealed records: the batch's nonces, and a buffer for associated data.
struct Sealer {
    nonces: Nonces,
    aad: Vec<u8>,
}

impl Sealer {
    /// The record of a skeleton and its taken values (each naming its key by its place in
    /// `keys`): one box a key, in key id order, its values in slot order, written and sealed
    /// in place.
    fn record(
        &mut self,
        skeleton: &Event,
        mut values: Vec<(usize, u16, String)>,
        keys: &[(KeyId, DataKey)],
    ) -> Result<Vec<u8>> {
        if values.is_empty() {
            return Ok(crate::encode(skeleton));
        }
        values.sort_by_key(|&(at, slot, _)| (keys[at].0, slot));
        let boxes = values.chunk_by(|a, b| keys[a.0].0 == keys[b.0].0);
        let count =
            u8::try_from(boxes.clone().count()).map_err(|_| Error::Sealed("over 255 keys"))?;
        let plain: usize = values.iter().map(|(_, _, v)| 6 + v.len()).sum();
        let mut record = Vec::with_capacity(2 + usize::from(count) * 48 + plain + 256);
        record.extend_from_slice(&[SEALED, count]);
        for values in boxes {
            let (id, key) = &keys[values[0].0];
            record.extend_from_slice(id.as_bytes());
            let len_at = record.len();
            record.extend_from_slice(&[0; 4]);
            let unsealed = self.nonces.begin(&mut record);
            for (_, slot, value) in values {
                record.extend_from_slice(&slot.to_le_bytes());
                record.extend_from_slice(&(value.len() as u32).to_le_bytes());
                record.extend_from_slice(value.as_bytes());
            }
            aad(&mut self.aad, skeleton, id);
            unsealed.seal(key, &self.aad, &mut record);
            let len = u32::try_from(record.len() - len_at - 4)
                .map_err(|_| Error::Sealed("a box over 4 GiB"))?;
            record[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        }
        crate::codec::encode_into(skeleton, &mut record);
        Ok(record)
    }
}

/// Decodes a record, opening its sealed values with the keys: an event whose keys were
/// destroyed reads erased. Records of the other formats read as [`crate::decode`] reads them.
pub fn decode_with(bytes: &[u8], keys: &dyn KeyStore) -> Result<Event> {
    let Some(record) = Record::parse(bytes)? else {
        return crate::decode(bytes);
    };
    let mut event = crate::decode(record.skeleton)?;
    let mut bound = Vec::new();
    for (id, sealed) in record.boxes {
        let Some(key) = keys.key(&id) else {
            event.erased = true;
            continue;
        };
        aad(&mut bound, &event, &id);
        let plain = rezef_keys::open(&key, &bound, sealed).map_err(Error::Keys)?;
        for (slot, value) in values(&plain)? {
            if !personal::restore(&mut event, slot, value) {
                return Err(Error::Sealed("a value for a slot the event does not have"));
            }
        }
    }
    Ok(event)
}

/// The skeleton record inside a sealed one; any other record as it is.
pub(crate) fn skeleton(bytes: &[u8]) -> Result<&[u8]> {
    Ok(Record::parse(bytes)?.map_or(bytes, |record| record.skeleton))
}

/// The key ids a record's values are sealed under (none for the other formats).
pub fn key_ids(bytes: &[u8]) -> Result<Vec<KeyId>> {
    Ok(Record::parse(bytes)?.map_or_else(Vec::new, |r| r.boxes.into_iter().map(|b| b.0).collect()))
}

struct Record<'a> {
    boxes: Vec<(KeyId, &'a [u8])>,
    skeleton: &'a [u8],
}

impl<'a> Record<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Option<Self>> {
        let Some((&SEALED, rest)) = bytes.split_first() else {
            return Ok(None);
        };
        let (&count, mut rest) = rest
            .split_first()
            .ok_or(Error::Sealed("cut in its header"))?;
        let mut boxes = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let id = take(&mut rest, 16)?;
            let id = KeyId(
                id.try_into()
                    .map_err(|_| Error::Sealed("cut in a key id"))?,
            );
            let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().unwrap_or_default());
            boxes.push((id, take(&mut rest, len as usize)?));
        }
        if rest.first() == Some(&SEALED) {
            return Err(Error::Sealed("a sealed record inside another"));
        }
        Ok(Some(Self {
            boxes,
            skeleton: rest,
        }))
    }
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if bytes.len() < n {
        return Err(Error::Sealed("cut short"));
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

fn values(mut plain: &[u8]) -> Result<Vec<(u16, String)>> {
    let mut values = Vec::new();
    while !plain.is_empty() {
        let slot = u16::from_le_bytes(take(&mut plain, 2)?.try_into().unwrap_or_default());
        let len = u32::from_le_bytes(take(&mut plain, 4)?.try_into().unwrap_or_default());
        let value = String::from_utf8(take(&mut plain, len as usize)?.to_vec())
            .map_err(|_| Error::Sealed("a value that is not UTF-8"))?;
        values.push((slot, value));
    }
    Ok(values)
}

/// What a box is bound to: its event and its key, written to `aad`.
fn aad(aad: &mut Vec<u8>, event: &Event, key: &KeyId) {
    aad.clear();
    aad.extend_from_slice(event.event_id.as_str().as_bytes());
    aad.extend_from_slice(key.as_bytes());
}

/// Whether records are sealed, and under which keys: a node on the embedded log seals
/// (its key store is in its data directory); `Sealing::default()` stores every record plain
/// and reads sealed ones as their skeletons.
#[derive(Clone, Default)]
pub struct Sealing {
    keys: Option<Arc<dyn KeyStore>>,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealing")
            .field("sealed", &self.keys.is_some())
            .finish()
    }
}

impl Sealing {
    pub fn under(keys: Arc<dyn KeyStore>) -> Self {
        Self { keys: Some(keys) }
    }

    /// The key store, when records are sealed.
    pub fn keys(&self) -> Option<&Arc<dyn KeyStore>> {
        self.keys.as_ref()
    }

    /// The records of these events (may make keys: blocking I/O).
    pub fn encode_all(&self, events: Vec<Event>) -> Result<Vec<Vec<u8>>> {
        match &self.keys {
            Some(keys) => encode_all(events, keys.as_ref()),
            None => Ok(events.iter().map(crate::encode).collect()),
        }
    }

    /// The event of a record, its sealed values opened when the keys are here.
    pub fn decode(&self, bytes: &[u8]) -> Result<Event> {
        match &self.keys {
            Some(keys) => decode_with(bytes, keys.as_ref()),
            None => crate::decode(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use rezef_events::event::{Participant, Payload};
    use rezef_events::fold::customer_id_for;
    use rezef_events::handover::Handover;
    use rezef_events::journey::{MergeCause, MergeRecord};
    use rezef_events::testing::EventBuilder;
    use rezef_events::{CustomerId, Journey, JourneySnapshot};
    use rezef_keys::FileKeyStore;

    use super::*;
    use crate::event::tests::every_payload;

    fn store() -> (tempfile::TempDir, FileKeyStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileKeyStore::open(dir.path()).expect("key store");
        (dir, store)
    }

    #[test]
    fn every_payload_reads_back_equal_and_its_personal_values_are_not_in_the_clear() {
        let (_dir, keys) = store();
        let events = every_payload();
        let records = encode_all(events.clone(), &keys).expect("sealed");
        for (event, record) in events.iter().zip(&records) {
            assert_eq!(&decode_with(record, &keys).expect("opens"), event);
            let mut skeleton = event.clone();
            let taken = personal::split(&mut skeleton);
            assert_eq!(
                record[0] == SEALED,
                !taken.is_empty(),
                "{}",
                event.payload.name()
            );
            assert_eq!(crate::decode(record).expect("skeleton"), skeleton);
            for taken in taken.iter().filter(|t| t.value.len() >= 4) {
                let clear = record
                    .windows(taken.value.len())
                    .any(|w| w == taken.value.as_bytes());
                assert!(!clear, "{} shows {:?}", event.payload.name(), taken.value);
            }
        }
    }

    #[test]
    fn given_a_destroyed_key_when_read_then_the_event_is_its_skeleton_marked_erased() {
        let (_dir, keys) = store();
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let message = chat.message(Participant::Customer, "my card is 4580 1234");
        let record = &encode_all(vec![message.clone()], &keys).expect("sealed")[0];
        keys.destroy(&key_ids(record).expect("ids"))
            .expect("destroyed");
        let read = decode_with(record, &keys).expect("reads");
        assert!(read.erased);
        let mut skeleton = message.clone();
        personal::split(&mut skeleton);
        assert_eq!(
            Event {
                erased: false,
                ..read
            },
            skeleton
        );
        let other = chat.message(Participant::Customer, "still here");
        let record = &encode_all(vec![other.clone()], &keys).expect("sealed")[0];
        assert_eq!(
            decode_with(record, &keys).expect("opens"),
            other,
            "a new key"
        );
    }

    /// A journey moving between partitions (a merge across them): the customer's chat, then
    /// the snapshot shipped to the survivor's partition.
    fn moved_journey() -> (Event, Journey) {
        let mut chat = EventBuilder::visitor("acme", "v-moved");
        let phone = ChannelIdentity::phone("+972501234567").expect("valid");
        let events = [
            chat.started(),
            chat.message(Participant::Customer, "my card is 4580 1234"),
            chat.context("order", "A-1001"),
            chat.identified(vec![phone]),
        ];
        let Some(CustomerRef::Identity(visitor)) = &events[0].customer else {
            panic!("a visitor");
        };
        let customer = customer_id_for(&events[0].tenant_id, visitor);
        let mut journey =
            Journey::new(events[0].tenant_id.clone(), customer, events[0].occurred_at);
        for (offset, event) in (0..).zip(&events) {
            journey.apply(offset, event);
        }
        let survivor = CustomerId::new("cus-survivor").expect("valid");
        let record = MergeRecord {
            at: events[3].occurred_at,
            offset: 3,
            cause: MergeCause::Requested {
                reason: "same person".into(),
                requested_by: "admin".into(),
            },
        };
        let moved = Handover::JourneyMoved {
            journey: JourneySnapshot::of(&journey),
            into: Some((survivor, record)),
        };
        (moved.event(&events[3]), journey)
    }

    #[test]
    fn a_moved_journey_is_sealed_whole_under_its_own_customers_key() {
        let (_dir, keys) = store();
        let (moved, journey) = moved_journey();
        let record = &encode_all(vec![moved.clone()], &keys).expect("sealed")[0];
        for clear in ["+972501234567", "v-moved", "my card is 4580", "A-1001"] {
            let shown = record.windows(clear.len()).any(|w| w == clear.as_bytes());
            assert!(!shown, "the record shows {clear:?}");
        }
        assert_eq!(decode_with(record, &keys).expect("opens"), moved);

        // Its key is the moved journey's customer's, not the survivor's the event is about
        let own = Subject::customer("acme", journey.customer_id.as_str());
        assert_eq!(key_ids(record).expect("ids"), keys.find(&own));
        keys.destroy(&keys.find(&own)).expect("destroyed");
        let read = decode_with(record, &keys).expect("reads");
        assert!(read.erased);
        let Payload::Handover(Handover::JourneyMoved {
            journey: erased, ..
        }) = read.payload
        else {
            panic!("the handover");
        };
        let mut expected = journey.clone();
        expected.erase();
        assert_eq!(
            erased.into_journey(),
            expected,
            "the journey erased, as a rebuild folds it"
        );
    }

    #[test]
    fn a_box_moved_to_another_event_or_changed_does_not_open() {
        let (_dir, keys) = store();
        let mut chat = EventBuilder::visitor("acme", "v-1");
        let events = [
            chat.context("order", "A-1001"),
            chat.context("order", "A-1002"),
        ];
        let records = encode_all(events.to_vec(), &keys).expect("sealed");
        let skeleton = |r: &[u8]| {
            Record::parse(r)
                .expect("parses")
                .expect("sealed")
                .skeleton
                .len()
        };
        // The second record's boxes in front of the first one's skeleton.
        let (first, second) = (&records[0], &records[1]);
        let mut moved = second[..second.len() - skeleton(second)].to_vec();
        moved.extend_from_slice(&first[first.len() - skeleton(first)..]);
        assert!(matches!(decode_with(&moved, &keys), Err(Error::Keys(_))));
        let mut changed = first.clone();
        changed[2 + 16 + 4 + 30] ^= 1;
        assert!(matches!(decode_with(&changed, &keys), Err(Error::Keys(_))));
    }

    #[test]
    fn malformed_sealed_records_are_errors_not_panics() {
        let (_dir, keys) = store();
        for bytes in [&[SEALED][..], &[SEALED, 1, 0, 0], &[SEALED, 0, SEALED, 0]] {
            assert!(
                matches!(decode_with(bytes, &keys), Err(Error::Sealed(_))),
                "{bytes:?}"
            );
            assert!(
                matches!(crate::decode(bytes), Err(Error::Sealed(_))),
                "{bytes:?}"
            );
        }
    }
}
