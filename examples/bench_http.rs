// SPDX-License-Identifier: MPL-2.0
//! The client-server baseline of the swarm bench: a plain HTTP Live Streaming channel
//! served by a stock web server (Debian's nginx), and an HLS fetcher that behaves like a
//! simple live player.
//!
//! Why: the layered channel sends 128 / 512 / 2048 kbit/s layers that a client adds up to
//! 128 / 640 / 2688 kbit/s. The classic way to serve the same audience is simulcast: one
//! independent encoding per rung at those cumulative rates, served from one origin, with
//! each client picking a variant by adaptive bitrate. This binary is that reference, at
//! the same ladder, so the bench can compare the uplink the origin needs, the quality the
//! clients get and the segments they miss.
//!
//! Roles (first argument); every role writes [`events::Event`] JSON lines on stdout and
//! stops when its stdin closes:
//!
//! * `channel --address IP --port P --dir DIR --ladder-kbps 128,640,2688 [--width 640
//!   --height 360 --fps 30] [--segment-s 2] [--max-upload-kbps K]`: one GStreamer
//!   pipeline (live test source, one x264 encoder and `hlssink2` per rung, into
//!   `DIR/v<i>/`), `DIR/master.m3u8` listing the variants, and nginx as a child serving
//!   `DIR`. Emits `listening` once nginx answers, `published` per segment of the top
//!   variant, `upload` every second (sum of nginx's `$bytes_sent`), `end`. The upload cap
//!   is not applied (a per-connection `limit_rate` is not a channel cap): shape the link
//!   with tc; the role says so in a `note`.
//! * `client --url http://IP:P/master.m3u8 [--name NAME] [--down-kbps K] [--buffer-s 4]`:
//!   starts one segment behind the live edge at the lowest variant, then takes the
//!   highest variant whose BANDWIDTH is at most 0.8 x the smoothed throughput. Playback
//!   starts `buffer-s` after the first segment arrives; a segment not downloaded by its
//!   play time is failed and the player moves on. Emits `segment` per segment, `end`.
//!   `--down-kbps` paces body reads (loopback runs without tc only).

#[path = "common/events.rs"]
mod events;

#[path = "bench_http/channel.rs"]
mod channel;
#[path = "bench_http/client.rs"]
mod client;

use events::{Event, now_s};

/// Tiny `--key value` parser: every option takes a value.
pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    fn parse(raw: &[String]) -> Result<Args, String> {
        let mut pairs = Vec::new();
        let mut it = raw.iter();
        while let Some(k) = it.next() {
            let Some(key) = k.strip_prefix("--") else {
                return Err(format!("unexpected argument {k:?}"));
            };
            let Some(v) = it.next() else {
                return Err(format!("--{key} needs a value"));
            };
            pairs.push((key.to_string(), v.clone()));
        }
        Ok(Args { pairs })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn req(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("--{key} is required"))
    }

    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: cannot parse {v:?}")),
        }
    }

    /// Rejects options the role does not know (typos would otherwise pass silently).
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((k, _)) => Err(format!("unknown option --{k}")),
            None => Ok(()),
        }
    }
}

/// Emits a fatal error line.
pub fn fail(text: impl Into<String>) {
    Event::Error {
        t: now_s(),
        text: text.into(),
    }
    .emit();
}

/// Emits a note line.
pub fn note(text: impl Into<String>) {
    Event::Note {
        t: now_s(),
        text: text.into(),
    }
    .emit();
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench_http channel --address IP --port P --dir DIR --ladder-kbps 128,640,2688 \
                 [--width W --height H --fps F --segment-s S --max-upload-kbps K] | \
                 bench_http client --url URL [--name NAME --down-kbps K --buffer-s S]";
    let Some(role) = raw.first() else {
        fail(usage);
        std::process::exit(2);
    };
    let args = match Args::parse(&raw[1..]) {
        Ok(a) => a,
        Err(e) => {
            fail(format!("{e}; {usage}"));
            std::process::exit(2);
        }
    };
    let code = match role.as_str() {
        "channel" => channel::run(&args),
        "client" => client::run(&args),
        _ => {
            fail(format!("unknown role {role:?}; {usage}"));
            2
        }
    };
    std::process::exit(code);
}
