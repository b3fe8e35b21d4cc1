// SPDX-License-Identifier: MPL-2.0
//! The `client` role: a simple live HLS player that downloads and counts, but does not
//! decode. Adaptive bitrate from a smoothed throughput estimate; a fixed playback
//! timeline (no rebuffering): a segment late for its play time is failed and skipped.

use std::time::Duration;

use reqwest::Url;
use tokio::time::Instant;

use crate::events::{Event, now_s, own_cost, stdin_closed};
use crate::{Args, fail};

/// The server counts as gone after this long without any HTTP answer.
const UNREACHABLE_AFTER: Duration = Duration::from_secs(10);
/// Attempts per segment on network errors (each bounded by the segment's deadline).
const ATTEMPTS: u32 = 3;
/// Pick the highest variant with BANDWIDTH <= this share of the estimate.
const SAFETY: f64 = 0.8;

struct Config {
    url: Url,
    name: String,
    down_kbps: u64,
    buffer_s: f64,
}

#[derive(Default)]
struct Stats {
    ok: u64,
    failed: u64,
    bytes: u64,
    switches: u64,
    variant: usize,
}

#[derive(Debug)]
struct Variant {
    bandwidth: u64,
    url: Url,
}

#[derive(Default)]
struct Media {
    first_seq: u64,
    target_s: f64,
    /// (uri, EXTINF duration) from `first_seq` on.
    segments: Vec<(Url, f64)>,
}

impl Media {
    fn end_seq(&self) -> u64 {
        self.first_seq + self.segments.len() as u64
    }
    fn get(&self, seq: u64) -> Option<&(Url, f64)> {
        seq.checked_sub(self.first_seq)
            .and_then(|i| self.segments.get(i as usize))
    }
}

/// The variants of a master playlist, lowest bandwidth first (empty when the text is
/// not one yet: the caller reloads).
fn parse_master(base: &Url, text: &str) -> Vec<Variant> {
    let Ok(master) = m3u8_rs::parse_master_playlist_res(text.as_bytes()) else {
        return Vec::new();
    };
    let mut out: Vec<Variant> = master
        .variants
        .into_iter()
        .filter(|v| !v.is_i_frame)
        .filter_map(|v| {
            Some(Variant {
                bandwidth: v.bandwidth,
                url: base.join(&v.uri).ok()?,
            })
        })
        .collect();
    out.sort_by_key(|v| v.bandwidth);
    out
}

/// A media playlist (no segments when the text is not one yet: the caller reloads).
fn parse_media(base: &Url, text: &str) -> Media {
    let Ok(pl) = m3u8_rs::parse_media_playlist_res(text.as_bytes()) else {
        return Media {
            target_s: 2.0,
            ..Media::default()
        };
    };
    let target_s = if pl.target_duration > 0 {
        pl.target_duration as f64
    } else {
        2.0
    };
    Media {
        first_seq: pl.media_sequence,
        target_s,
        segments: pl
            .segments
            .into_iter()
            .filter_map(|s| Some((base.join(&s.uri).ok()?, f64::from(s.duration))))
            .collect(),
    }
}

/// Paces body reads to a rate: a token bucket with (almost) no burst, shared by all
/// requests of the client.
struct Pacer {
    bytes_per_s: f64,
    free_at: Instant,
}

impl Pacer {
    async fn take(&mut self, n: usize) {
        if self.bytes_per_s <= 0.0 {
            return;
        }
        let now = Instant::now();
        // At most 10 ms of credit carried over from an idle period.
        let start = self.free_at.max(now - Duration::from_millis(10));
        self.free_at = start + Duration::from_secs_f64(n as f64 / self.bytes_per_s);
        if self.free_at > now {
            tokio::time::sleep_until(self.free_at).await;
        }
    }
}

enum Got {
    /// Status and body (the body is only kept when asked for).
    Http(u16, Vec<u8>),
    Net(String),
}

struct Player {
    cfg: Config,
    http: reqwest::Client,
    pacer: Pacer,
    /// Last time the server answered at all.
    last_answer: Instant,
}

impl Player {
    /// One GET, body read chunk by chunk through the pacer. Body bytes go to `*count` as
    /// they arrive, so a caller that drops this future (deadline) still knows them.
    async fn get(&mut self, url: &Url, keep: bool, count: &mut u64) -> Got {
        let mut resp = match self.http.get(url.clone()).send().await {
            Ok(r) => r,
            Err(e) => return Got::Net(e.to_string()),
        };
        self.last_answer = Instant::now();
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    *count += c.len() as u64;
                    self.pacer.take(c.len()).await;
                    if keep {
                        body.extend_from_slice(&c);
                    }
                }
                Ok(None) => break,
                Err(e) => return Got::Net(format!("reading body: {e}")),
            }
        }
        self.last_answer = Instant::now();
        Got::Http(status, body)
    }

    /// Ok(body) of a 200 answer; Err(text) otherwise. Errors out (fatal) if the server has
    /// not answered for [`UNREACHABLE_AFTER`].
    async fn text(
        &mut self,
        url: &Url,
        stats: &mut Stats,
    ) -> Result<Result<String, String>, String> {
        let mut n = 0;
        let got = self.get(url, true, &mut n).await;
        stats.bytes += n;
        match got {
            Got::Http(200, body) => Ok(Ok(String::from_utf8_lossy(&body).into_owned())),
            Got::Http(s, _) => Ok(Err(format!("HTTP {s}"))),
            Got::Net(e) if self.last_answer.elapsed() > UNREACHABLE_AFTER => Err(format!(
                "{url} unreachable for {:?}: {e}",
                self.last_answer.elapsed()
            )),
            Got::Net(e) => Ok(Err(e)),
        }
    }
}

/// Two exponentially weighted averages of segment throughput (bit/s), in the manner of
/// hls.js: the estimate is the smaller one (quick to fall, slow to rise).
#[derive(Default)]
struct Estimate {
    fast: Option<f64>,
    slow: Option<f64>,
}

impl Estimate {
    fn add(&mut self, bps: f64) {
        let mix = |avg: Option<f64>, half_life: f64| {
            let a = 1.0 - 0.5f64.powf(1.0 / half_life);
            Some(avg.map_or(bps, |v| v + a * (bps - v)))
        };
        self.fast = mix(self.fast, 2.0);
        self.slow = mix(self.slow, 5.0);
    }
    fn bps(&self) -> Option<f64> {
        Some(self.fast?.min(self.slow?))
    }
}

pub fn run(args: &Args) -> i32 {
    let cfg = match (|| -> Result<Config, String> {
        args.only(&["url", "name", "down-kbps", "buffer-s"])?;
        let url = args.req("url")?;
        Ok(Config {
            url: Url::parse(url).map_err(|e| format!("--url {url:?}: {e}"))?,
            name: args.get("name").unwrap_or("client").to_string(),
            down_kbps: args.num("down-kbps", 0)?,
            buffer_s: args.num("buffer-s", 4.0)?,
        })
    })() {
        Ok(c) => c,
        Err(e) => {
            fail(format!("client: {e}"));
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            fail(format!("client: tokio runtime: {e}"));
            return 1;
        }
    };
    let stop = stdin_closed();
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = stop.recv();
            let _ = tx.send(());
        });
        let name = cfg.name.clone();
        let mut stats = Stats::default();
        let outcome = tokio::select! {
            r = play(cfg, &mut stats) => Some(r),
            _ = rx => None,
        };
        let code = match outcome {
            Some(Err(e)) => {
                fail(format!("client {name}: {e}"));
                1
            }
            _ => 0,
        };
        let (cpu, rss) = own_cost();
        Event::End {
            t: now_s(),
            cpu_s: cpu,
            max_rss_kb: rss,
            stats: serde_json::json!({
                "segments_ok": stats.ok,
                "segments_failed": stats.failed,
                "bytes": stats.bytes,
                "switches": stats.switches,
                "variant": stats.variant,
            }),
        }
        .emit();
        code
    })
}

/// The player loop; returns only on a fatal error (the caller stops it on stdin close).
async fn play(cfg: Config, stats: &mut Stats) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let mut p = Player {
        pacer: Pacer {
            bytes_per_s: cfg.down_kbps as f64 * 1000.0 / 8.0,
            free_at: Instant::now(),
        },
        cfg,
        http,
        last_answer: Instant::now(),
    };
    let master_url = p.cfg.url.clone();

    // Master playlist: retried until it parses, for at most UNREACHABLE_AFTER.
    let since = Instant::now();
    let variants = loop {
        match p.text(&master_url, stats).await? {
            Ok(t) => {
                let v = parse_master(&master_url, &t);
                if !v.is_empty() {
                    break v;
                }
            }
            Err(e) if since.elapsed() > UNREACHABLE_AFTER => {
                return Err(format!("master playlist {master_url}: {e}"));
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let n = variants.len() as u32;
    let mut cur = 0usize;
    stats.variant = 1;
    let mut est = Estimate::default();

    // Media playlist of the lowest variant; start one segment behind the live edge.
    let mut media = loop {
        if let Ok(t) = p.text(&variants[cur].url, stats).await? {
            let m = parse_media(&variants[cur].url, &t);
            if !m.segments.is_empty() {
                break m;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut seq = media.end_seq().saturating_sub(2).max(media.first_seq);
    // Playback timeline, fixed once the first segment is in: play time of `seq`.
    let mut due: Option<Instant> = None;

    loop {
        // Make sure the playlist lists `seq`, reloading (bounded by the deadline).
        // The first reload is immediate (the segment is likely out already); later ones
        // wait a quarter of the target duration, never past the deadline.
        let mut listed = media.get(seq).cloned();
        let mut reloads = 0u32;
        while listed.is_none() {
            if !media.segments.is_empty() && seq < media.first_seq {
                break; // slid out of the playlist: too late
            }
            if due.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if reloads > 0 {
                let poll = Duration::from_secs_f64((media.target_s / 4.0).clamp(0.1, 1.0));
                let wake = Instant::now() + poll;
                tokio::time::sleep_until(due.map_or(wake, |d| d.min(wake))).await;
            }
            reloads += 1;
            match p.text(&variants[cur].url, stats).await? {
                Ok(t) => {
                    let m = parse_media(&variants[cur].url, &t);
                    if !m.segments.is_empty() {
                        media = m;
                    }
                }
                Err(_) => continue,
            }
            listed = media.get(seq).cloned();
        }

        let started = Instant::now();
        let mut got_bytes = 0u64;
        let mut ok = false;
        let duration_s = listed.as_ref().map_or(media.target_s, |s| s.1);
        if let Some((url, _)) = &listed {
            for attempt in 0..ATTEMPTS {
                let mut n_read = 0u64;
                let fetch = p.get(url, false, &mut n_read);
                let got = match due {
                    Some(d) => tokio::time::timeout_at(d, fetch).await.ok(),
                    None => tokio::time::timeout(Duration::from_secs(10), fetch)
                        .await
                        .ok(),
                };
                got_bytes += n_read;
                match got {
                    Some(Got::Http(200, _)) => {
                        ok = true;
                        break;
                    }
                    None => break, // deadline
                    Some(Got::Net(e)) if p.last_answer.elapsed() > UNREACHABLE_AFTER => {
                        stats.bytes += got_bytes;
                        return Err(format!("{url} unreachable: {e}"));
                    }
                    Some(_) if attempt + 1 < ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Some(_) => {}
                }
            }
        }
        stats.bytes += got_bytes;
        let finished = Instant::now();
        let elapsed = (finished - started).as_secs_f64();
        if got_bytes > 0 && elapsed > 0.0 {
            est.add(got_bytes as f64 * 8.0 / elapsed);
        }

        // The first segment in starts the clock; before that, nothing is late.
        let deadline =
            *due.get_or_insert_with(|| finished + Duration::from_secs_f64(p.cfg.buffer_s));
        let margin_s = if deadline >= finished {
            (deadline - finished).as_secs_f64()
        } else {
            -(finished - deadline).as_secs_f64()
        };
        let ok = ok && margin_s >= 0.0;
        if ok {
            stats.ok += 1;
        } else {
            stats.failed += 1;
        }
        let d = cur as u32 + 1;
        Event::Segment {
            t: now_s(),
            seq,
            success: ok,
            skipped: false,
            d: if ok { d } else { 0 },
            d_target: d,
            n,
            bytes: if ok { got_bytes } else { 0 },
            duration_s,
            margin_s,
            from_seed: got_bytes,
            from_peers: 0,
            te_s: 0.0,
            rate_kbps: est.bps().unwrap_or(0.0) / 1000.0,
            // A late segment fails here (its timeline never moves), so a played one
            // waits its margin.
            play_delay_s: ok.then_some(margin_s),
            stall_s: 0.0,
        }
        .emit();
        due = Some(deadline + Duration::from_secs_f64(duration_s));
        seq += 1;

        // Adaptive bitrate for the next segment.
        if let Some(bps) = est.bps() {
            let want = variants
                .iter()
                .rposition(|v| v.bandwidth as f64 <= SAFETY * bps)
                .unwrap_or(0);
            if want != cur {
                cur = want;
                stats.switches += 1;
                stats.variant = cur + 1;
                // Empty until that variant's playlist is in (the wait loop reloads it).
                media = Media {
                    target_s: media.target_s,
                    ..Media::default()
                };
                if let Ok(t) = p.text(&variants[cur].url, stats).await? {
                    media = parse_media(&variants[cur].url, &t);
                }
            }
        }
    }
}
