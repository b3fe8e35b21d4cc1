// SPDX-License-Identifier: MPL-2.0
//! Property rules the elements check when they leave NULL (and again when they start,
//! since READY still lets them change): a wrong value is an error that names the
//! property, the value and the rule, never a failure at the first Segment.

use std::fmt::Display;
use std::net::IpAddr;

use crate::core::api::valid_channel_name;

/// The error every rule gives: "Invalid property NAME=VALUE: RULE".
pub fn invalid(name: &str, value: impl Display, rule: &str) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Settings,
        ("Invalid property {}={}: {}", name, value, rule)
    )
}

/// An IP address to listen on (host names are not resolved: a listener needs one
/// address, and a name may resolve to several or to none when offline).
pub fn listen_address(name: &str, value: &str) -> Result<IpAddr, gst::ErrorMessage> {
    value.parse().map_err(|_| {
        invalid(
            name,
            format!("'{value}'"),
            "an IP address is needed (127.0.0.1, ::1, 0.0.0.0 or a local interface's address); host names are not resolved",
        )
    })
}

/// A rate cap in bytes/s: 0 (none) or at least `min`.
pub fn rate_limit(name: &str, value: u32, min: u32) -> Result<Option<u32>, gst::ErrorMessage> {
    match value {
        0 => Ok(None),
        v if v < min => Err(invalid(
            name,
            value,
            &format!("a rate cap is 0 (unlimited) or at least {min} bytes/s"),
        )),
        v => Ok(Some(v)),
    }
}

/// A BitTorrent piece length: a power of two of at least 16 KiB.
pub fn piece_size(name: &str, value: u32) -> Result<u32, gst::ErrorMessage> {
    if value >= 16 * 1024 && value.is_power_of_two() {
        Ok(value)
    } else {
        Err(invalid(
            name,
            value,
            "a piece length is a power of two of at least 16384 bytes (16384, 32768, 65536, ...)",
        ))
    }
}

/// External tracker URLs: http://, https:// or udp://.
pub fn tracker_urls(name: &str, urls: &[String]) -> Result<(), gst::ErrorMessage> {
    match urls.iter().find(|u| {
        !["http://", "https://", "udp://"]
            .iter()
            .any(|scheme| u.len() > scheme.len() && u.starts_with(scheme))
    }) {
        Some(bad) => Err(invalid(
            name,
            format!("'{}'", urls.join(",")),
            &format!("'{bad}' is not an http://, https:// or udp:// tracker URL"),
        )),
        None => Ok(()),
    }
}

/// A channel's URL: http://HOST[:PORT]/CHANNEL.
pub fn channel_url(name: &str, value: Option<&str>) -> Result<String, gst::ErrorMessage> {
    let rule = "the channel's URL is http://HOST:PORT/CHANNEL (CHANNEL: letters, digits, '-', '_')";
    let Some(value) = value else {
        return Err(invalid(name, "(none)", rule));
    };
    let ok = reqwest::Url::parse(value).ok().is_some_and(|u| {
        let segments: Vec<&str> = u
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        u.scheme() == "http"
            && u.host().is_some()
            && u.query().is_none()
            && segments.len() == 1
            && valid_channel_name(segments[0])
    });
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid(name, format!("'{value}'"), rule))
    }
}

/// A range whose lower end may not pass its upper end.
pub fn ordered(
    low_name: &str,
    low: u32,
    high_name: &str,
    high: u32,
) -> Result<(), gst::ErrorMessage> {
    if low <= high {
        Ok(())
    } else {
        Err(invalid(
            low_name,
            low,
            &format!("{low_name} may not exceed {high_name} (= {high})"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: gst::ErrorMessage) -> String {
        e.to_string()
    }

    #[test]
    fn rules_name_the_property_the_value_and_the_rule() {
        assert!(listen_address("address", "127.0.0.1").is_ok());
        assert!(listen_address("address", "::1").is_ok());
        let e = text(listen_address("address", "localhost").unwrap_err());
        assert!(
            e.contains("address='localhost'") && e.contains("IP address is needed"),
            "{e}"
        );
        assert_eq!(rate_limit("max-upload-rate", 0, 1024).unwrap(), None);
        assert_eq!(
            rate_limit("max-upload-rate", 1024, 1024).unwrap(),
            Some(1024)
        );
        let e = text(rate_limit("max-upload-rate", 1000, 1024).unwrap_err());
        assert!(
            e.contains("max-upload-rate=1000") && e.contains("1024"),
            "{e}"
        );
        assert!(piece_size("piece-size", 65536).is_ok());
        for bad in [20000, 8192, 0] {
            let e = text(piece_size("piece-size", bad).unwrap_err());
            assert!(e.contains(&format!("piece-size={bad}")), "{e}");
        }
        assert!(tracker_urls("announce-urls", &[]).is_ok());
        assert!(tracker_urls("announce-urls", &["udp://127.0.0.1:6969".into()]).is_ok());
        let e = text(tracker_urls("announce-urls", &["ftp://x".into()]).unwrap_err());
        assert!(e.contains("'ftp://x' is not"), "{e}");
        assert!(channel_url("location", Some("http://127.0.0.1:8080/live")).is_ok());
        assert!(channel_url("location", Some("http://[::1]:8080/live_2")).is_ok());
        for bad in [
            "not-a-url",
            "http://127.0.0.1:9/a/b/c",
            "https://127.0.0.1:8080/live",
            "127.0.0.1:8080/live",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/a b",
            "ftp://127.0.0.1/live",
            "http://127.0.0.1/live?x=1",
        ] {
            let e = text(channel_url("location", Some(bad)).unwrap_err());
            assert!(
                e.contains("location=") && e.contains("CHANNEL"),
                "{bad}: {e}"
            );
        }
        assert!(text(channel_url("location", None).unwrap_err()).contains("(none)"));
        assert!(ordered("min-gops", 2, "max-gops", 2).is_ok());
        let e = text(ordered("min-gops", 5, "max-gops", 2).unwrap_err());
        assert!(
            e.contains("min-gops=5") && e.contains("max-gops (= 2)"),
            "{e}"
        );
    }
}
