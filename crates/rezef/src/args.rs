//! How commands read a channel, a time and a point in the log's history from their
//! arguments, as people write them.

use rezef_adapter::proto;

/// A channel by its name: `voice`, `webchat`, `web_form`, ...
pub fn channel(name: &str) -> Result<proto::Channel, String> {
    proto::Channel::from_str_name(&format!("CHANNEL_{}", name.to_uppercase()))
        .filter(|channel| *channel != proto::Channel::Unspecified)
        .ok_or_else(|| format!("unknown channel {name:?}"))
}

/// An RFC 3339 time (`2026-12-07T09:30:00Z`).
pub fn time(text: &str) -> Result<prost_types::Timestamp, String> {
    let time = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("not an RFC 3339 time ({e}): {text:?}"))?;
    Ok(prost_types::Timestamp::from(time))
}

/// A day, `YYYY-MM-DD`: its midnight UTC.
pub fn day(text: &str) -> Result<std::time::SystemTime, String> {
    let wrong = || format!("not a day written YYYY-MM-DD: {text:?}");
    if text.len() != 10 {
        return Err(wrong());
    }
    humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).map_err(|_| wrong())
}

/// `--as-of`: a log offset, or an RFC 3339 time.
pub fn as_of(text: &str) -> Result<proto::AsOf, String> {
    use proto::as_of::Point;
    let point = match text.parse::<u64>() {
        Ok(offset) => Point::Offset(offset),
        Err(_) => Point::Time(time(text)?),
    };
    Ok(proto::AsOf { point: Some(point) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_named_as_people_write_them() {
        assert_eq!(channel("voice"), Ok(proto::Channel::Voice));
        assert_eq!(channel("web_form"), Ok(proto::Channel::WebForm));
        assert!(channel("unspecified").is_err());
        assert!(channel("pigeon").is_err());
    }

    #[test]
    fn a_day_is_its_midnight_utc() {
        let midnight = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_601_600);
        assert_eq!(day("2026-12-07"), Ok(midnight));
        for wrong in [
            "2026-12-7",
            "2026-12-07T00:00:00Z",
            "yesterday",
            "2026-13-01",
        ] {
            assert!(day(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn a_point_is_an_offset_or_a_time() {
        let point = |text| as_of(text).map(|a| a.point);
        assert_eq!(point("14"), Ok(Some(proto::as_of::Point::Offset(14))));
        let noon = prost_types::Timestamp {
            seconds: 1_796_126_400,
            nanos: 0,
        };
        assert_eq!(
            point("2026-12-01T12:00:00Z"),
            Ok(Some(proto::as_of::Point::Time(noon)))
        );
        assert!(as_of("yesterday").is_err());
    }
}
