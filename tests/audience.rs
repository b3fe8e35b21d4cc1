// SPDX-License-Identifier: MPL-2.0
//! Feedback that counts only the audience (issue 10): twenty made-up client ids
//! posting failures, some from one address and some from many, never joined the swarm;
//! one real crumbsrc client plays. rho and |G| stay where the real client puts them.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use gstcrumbs::core::api::{StatsDoc, WindowDoc};
use gstcrumbs::p2p::RUNTIME;

/// Posts failures for every Segment of the window, as twenty made-up clients: ten
/// from 127.0.0.2, ten from 127.0.0.3 ..= 127.0.0.12. Some name a made-up peer id.
async fn forge(url: &str, rounds: &AtomicU64, stop: &AtomicBool) {
    let clients: Vec<(String, reqwest::Client)> = (0..20u8)
        .map(|i| {
            let from: IpAddr = if i < 10 {
                "127.0.0.2".parse().unwrap()
            } else {
                format!("127.0.0.{}", i - 7).parse().unwrap()
            };
            let http = reqwest::Client::builder()
                .local_address(from)
                .build()
                .unwrap();
            (format!("forger-{i}"), http)
        })
        .collect();
    while !stop.load(Ordering::SeqCst) {
        let Ok(r) = clients[0].1.get(url).send().await else {
            continue;
        };
        let Ok(w) = r.json::<WindowDoc>().await else {
            continue;
        };
        for seg in &w.segments {
            for (i, (id, http)) in clients.iter().enumerate() {
                // Raw JSON: what any HTTP client can send.
                let mut report = serde_json::json!({
                    "client_id": id,
                    "seq": seg.seq,
                    "successful": false,
                    "complete": false,
                    "d": 0,
                    "rate": 0.0,
                });
                if i % 2 == 0 {
                    report["peer_id"] = format!("{:040x}", i + 1).into();
                }
                let _ = http
                    .post(format!("{url}/report"))
                    .json(&report)
                    .send()
                    .await;
            }
        }
        rounds.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn made_up_clients_do_not_steer_rho_or_gops() {
    init();
    // 0.5 s GOPs, |G| between 1 and 2 starting at 2: rho below 0.5 would shrink it.
    let channel = Peer::start(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! svcvp8enc keyframe-max-dist=15 \
         ! svcsegmenter name=seg gops=2 min-gops=1 max-gops=2 success-threshold=0.5 \
         ! crumbsink name=ch window=6 tracker-interval=2",
    );
    let url = channel.listening().get::<String>("url").unwrap();
    let viewer = Peer::start(&format!(
        "crumbsrc name=viewer location={url} ! vp8dec ! fakesink sync=false"
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let forger = {
        let (url, stop, rounds) = (url.clone(), stop.clone(), rounds.clone());
        std::thread::spawn(move || RUNTIME.block_on(forge(&url, &rounds, &stop)))
    };
    // Until the channel has computed six rhos while forgers post (bounded).
    let rhos = || -> Vec<f64> {
        channel
            .named("crumbsink-segment")
            .iter()
            .map(|s| s.get::<f64>("rho").unwrap())
            .filter(|&r| r >= 0.0)
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(90);
    while rhos().len() < 6 || rounds.load(Ordering::SeqCst) < 10 {
        assert!(
            Instant::now() < end,
            "rhos {:?}, forger rounds {}",
            rhos(),
            rounds.load(Ordering::SeqCst)
        );
        channel.assert_no_error();
        viewer.assert_no_error();
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    forger.join().unwrap();

    let played = viewer.named("crumbsrc-segment");
    let failed = played
        .iter()
        .filter(|r| !r.get::<bool>("skipped").unwrap() && !r.get::<bool>("success").unwrap())
        .count();
    let rhos = rhos();
    let gops: Vec<u32> = channel
        .named("svcsegmenter-segment")
        .iter()
        .map(|s| s.get::<u32>("gops").unwrap())
        .collect();
    let st: StatsDoc = RUNTIME.block_on(async {
        reqwest::get(format!("{url}/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    eprintln!(
        "viewer: {} Segments, {failed} failed; rhos {rhos:?}; |G| {gops:?}; reports accepted {} rejected {}",
        played.len(),
        st.reports_accepted,
        st.reports_rejected
    );
    // One voter, the real client: rho is 1 or 0, never the forgers' 1/21.
    assert!(
        rhos.iter().all(|&r| r == 0.0 || r == 1.0),
        "rho moved by made-up clients: {rhos:?}"
    );
    let ones = rhos.iter().filter(|&&r| r == 1.0).count();
    assert!(
        ones + failed >= rhos.len(),
        "rho 0 without a failure of the real client: {rhos:?}"
    );
    assert!(ones >= 3, "{rhos:?}");
    // |G| shrinks only on the real client's failures (each costs at most a GOP).
    let shrunk = gops.iter().filter(|&&g| g < 2).count();
    assert!(
        shrunk <= 4 * failed,
        "|G| {gops:?} with {failed} failed Segments"
    );
    assert!(st.reports_accepted > 0, "the real client's reports count");
    assert!(
        st.reports_rejected >= 20 * 10,
        "every forged report is refused: {st:?}"
    );
    assert!(st.clients_reporting <= 1, "{st:?}");
}
