// SPDX-License-Identifier: MPL-2.0
//! `.torrent` files for crumbs, built in memory: BitTorrent v1 (BEP 3), one file.

use anyhow::{Context, bail, ensure};
use librqbit::{ByteBufOwned, TorrentMetaV1Info};
use librqbit_bencode::{bencode_serialize_to_writer, raw_value::RawValue};
use serde::Serialize;

/// Smallest piece length accepted: one BitTorrent block (16 KiB).
pub const MIN_PIECE_LENGTH: u32 = 16 * 1024;

/// A `.torrent` file made by [`make_torrent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeTorrent {
    /// The bencoded `.torrent` file (BitTorrent v1, single file).
    pub bytes: Vec<u8>,
    /// SHA-1 of the bencoded `info` dictionary.
    pub info_hash: [u8; 20],
    /// The file name in the torrent (`info.name`).
    pub name: String,
    /// The file length in bytes (`info.length`).
    pub length: u64,
}

/// What [`parse_torrent`] reads back from a `.torrent` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentInfo {
    pub info_hash: [u8; 20],
    /// `info.name`; for a single-file torrent the file name.
    pub name: String,
    /// Total length in bytes.
    pub length: u64,
    pub piece_length: u32,
    /// Tracker URLs (`announce-list` flattened, else `announce`).
    pub announce: Vec<String>,
}

/// The top level of a `.torrent` file. The bencode serializer sorts dict keys.
#[derive(Serialize)]
struct MetaInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    announce: Option<&'a str>,
    #[serde(rename = "announce-list", skip_serializing_if = "Vec::is_empty")]
    announce_list: Vec<Vec<&'a str>>,
    info: RawValue<&'a [u8]>,
}

/// Builds the `.torrent` file of one crumb in memory.
///
/// `name` is the file name a downloader writes the crumb to (a plain file name: no
/// `/`, not `.` or `..`); `piece_length` is a power of two, at least 16 KiB (16-64
/// KiB suits crumbs; the paper uses 256 KiB); `announce` lists tracker URLs (may be
/// empty: peers then come only from `initial_peers`). The info dictionary holds
/// `name`, `length`, `piece length` and `pieces` (SHA-1 of each piece), bencoded the
/// way librqbit itself does, so librqbit's parse gives the same info hash.
pub fn make_torrent(
    name: &str,
    data: &[u8],
    piece_length: u32,
    announce: &[String],
) -> anyhow::Result<MadeTorrent> {
    ensure!(
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']),
        "torrent name {name:?} is not a plain file name"
    );
    ensure!(!data.is_empty(), "cannot make a torrent of 0 bytes");
    ensure!(
        piece_length >= MIN_PIECE_LENGTH && piece_length.is_power_of_two(),
        "piece length {piece_length} is not a power of two >= {MIN_PIECE_LENGTH}"
    );
    for url in announce {
        ensure!(
            url.starts_with("http://") || url.starts_with("https://") || url.starts_with("udp://"),
            "tracker URL {url:?} is not http://, https:// or udp://"
        );
    }

    let mut pieces = Vec::with_capacity(data.len().div_ceil(piece_length as usize) * 20);
    for piece in data.chunks(piece_length as usize) {
        pieces.extend_from_slice(&sha1_smol::Sha1::from(piece).digest().bytes());
    }
    let info = TorrentMetaV1Info::<ByteBufOwned> {
        name: Some(name.as_bytes().into()),
        pieces: pieces.into(),
        piece_length,
        length: Some(data.len() as u64),
        ..Default::default()
    };
    let mut info_bytes = Vec::new();
    bencode_serialize_to_writer(&info, &mut info_bytes).context("bencoding the info dict")?;
    let info_hash = sha1_smol::Sha1::from(&info_bytes).digest().bytes();

    let meta = MetaInfo {
        announce: announce.first().map(String::as_str),
        announce_list: if announce.is_empty() {
            Vec::new()
        } else {
            // One tier per tracker, in the given order (BEP 12): a client tries the
            // first (the channel's own) and falls back to the next when it fails;
            // clients set to announce to all tiers use them all.
            announce.iter().map(|u| vec![u.as_str()]).collect()
        },
        info: RawValue(&info_bytes),
    };
    let mut bytes = Vec::with_capacity(info_bytes.len() + 64);
    bencode_serialize_to_writer(&meta, &mut bytes).context("bencoding the torrent")?;
    Ok(MadeTorrent {
        bytes,
        info_hash,
        name: name.to_owned(),
        length: data.len() as u64,
    })
}

/// Parses a `.torrent` file with librqbit's own parser (single-file torrents only).
pub fn parse_torrent(bytes: &[u8]) -> anyhow::Result<TorrentInfo> {
    let t = librqbit::torrent_from_bytes(bytes).context("not a valid .torrent file")?;
    let info = &t.info.data;
    if info.files.is_some() {
        bail!("multi-file torrents are not crumbs");
    }
    let name = info
        .name
        .as_ref()
        .context("torrent has no name")
        .and_then(|n| std::str::from_utf8(n.as_ref()).context("torrent name is not UTF-8"))?
        .to_owned();
    Ok(TorrentInfo {
        info_hash: t.info_hash.0,
        name,
        length: info.length.context("torrent has no length")?,
        piece_length: info.piece_length,
        announce: t
            .iter_announce()
            .filter_map(|u| std::str::from_utf8(u.as_ref()).ok().map(str::to_owned))
            .collect(),
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
