// SPDX-License-Identifier: MPL-2.0
//! Which leftover spool folders a start may remove: the selection rule, without any
//! file system access (the IO side is `crate::spool`).
//!
//! A crumbsrc keeps its crumbs in `$TMPDIR/crumbsrc-<pid>-<n>`, a crumbsink without
//! `spool-dir` in `$TMPDIR/crumbs-<channel>-<pid>-<n>`. Both are removed on a clean
//! stop; a killed process leaves them behind. The next start of either element removes
//! those whose owning process is gone, and never one of a live process.

/// Whose private spool folder a name is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpoolOwner {
    /// `crumbsrc-<pid>-<n>`
    Client { pid: u32 },
    /// `crumbs-<channel>-<pid>-<n>`
    Channel { channel: String, pid: u32 },
}

impl SpoolOwner {
    pub fn pid(&self) -> u32 {
        match self {
            SpoolOwner::Client { pid } | SpoolOwner::Channel { pid, .. } => *pid,
        }
    }
}

fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The owner named by a private spool folder name, `None` for any other name.
pub fn parse_spool_name(name: &str) -> Option<SpoolOwner> {
    if let Some(rest) = name.strip_prefix("crumbsrc-") {
        let (pid, n) = rest.split_once('-')?;
        number(n)?;
        let pid = u32::try_from(number(pid)?).ok()?;
        return Some(SpoolOwner::Client { pid });
    }
    let rest = name.strip_prefix("crumbs-")?;
    let (rest, n) = rest.rsplit_once('-')?;
    let (channel, pid) = rest.rsplit_once('-')?;
    number(n)?;
    let pid = u32::try_from(number(pid)?).ok()?;
    if !super::api::valid_channel_name(channel) {
        return None;
    }
    Some(SpoolOwner::Channel {
        channel: channel.to_string(),
        pid,
    })
}

/// What the IO side found out about one candidate folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpoolFacts {
    /// The folder (not a symbolic link) belongs to the user looking.
    pub owned_by_us: bool,
    /// A process with the folder's pid exists.
    pub pid_exists: bool,
    /// That process belongs to the user looking (`None`: it does not exist or its
    /// owner could not be read).
    pub pid_ours: Option<bool>,
    /// The pid is this very process.
    pub pid_is_self: bool,
    /// Seconds since the folder last changed.
    pub quiet_secs: u64,
}

/// A folder must have been left alone this long before it is removed: a guard for a
/// pid that this process cannot see (another pid namespace sharing `/tmp`), whose live
/// owner keeps writing crumbs into it.
pub const MIN_QUIET_SECS: u64 = 60;

/// Whether a leftover folder may be removed: it is ours, its owner process is gone (no
/// such pid, or the pid now belongs to another user), and nothing changed in it for
/// [`MIN_QUIET_SECS`].
pub fn is_stale(f: &SpoolFacts) -> bool {
    if !f.owned_by_us || f.pid_is_self || f.quiet_secs < MIN_QUIET_SECS {
        return false;
    }
    let owner_alive = f.pid_exists && f.pid_ours != Some(false);
    !owner_alive
}

/// A crumb file a channel `channel` writes into its `spool-dir`:
/// `<channel>-<seq, 10 digits>-<index, 3 digits>.crumb`.
pub fn is_crumb_file_of(name: &str, channel: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(channel)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.strip_suffix(".crumb"))
    else {
        return false;
    };
    let Some((seq, index)) = rest.split_once('-') else {
        return false;
    };
    seq.len() >= 10 && number(seq).is_some() && index.len() >= 3 && number(index).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_spool_name("crumbsrc-1234-0"),
            Some(SpoolOwner::Client { pid: 1234 })
        );
        assert_eq!(
            parse_spool_name("crumbs-live-77-12"),
            Some(SpoolOwner::Channel {
                channel: "live".into(),
                pid: 77
            })
        );
        assert_eq!(
            parse_spool_name("crumbs-my-chan_1-77-3"),
            Some(SpoolOwner::Channel {
                channel: "my-chan_1".into(),
                pid: 77
            })
        );
        for other in [
            "crumbsrc-1234",
            "crumbsrc-x-1",
            "crumbsrc-1-",
            "crumbsrc--1",
            "crumbsrc-99999999999-1",
            "crumbs-77-1",
            "crumbs--77-1",
            "crumbs-live-77-x",
            "crumbs-li.ve-77-1",
            "crumbs-spool",
            "tmp.abc",
            "crumbsrc-1-2/..",
        ] {
            assert_eq!(parse_spool_name(other), None, "{other}");
        }
    }

    fn facts() -> SpoolFacts {
        SpoolFacts {
            owned_by_us: true,
            pid_exists: false,
            pid_ours: None,
            pid_is_self: false,
            quiet_secs: 3600,
        }
    }

    #[test]
    fn only_folders_of_dead_owners_go() {
        assert!(is_stale(&facts()), "owner gone");
        // The pid lives on in another user's process: ours is gone.
        assert!(is_stale(&SpoolFacts {
            pid_exists: true,
            pid_ours: Some(false),
            ..facts()
        }));
        // A live process of ours: kept, even when quiet.
        assert!(!is_stale(&SpoolFacts {
            pid_exists: true,
            pid_ours: Some(true),
            ..facts()
        }));
        // A live process whose owner cannot be read: kept.
        assert!(!is_stale(&SpoolFacts {
            pid_exists: true,
            pid_ours: None,
            ..facts()
        }));
        assert!(!is_stale(&SpoolFacts {
            pid_is_self: true,
            ..facts()
        }));
        // Someone else's folder, or one that changed recently.
        assert!(!is_stale(&SpoolFacts {
            owned_by_us: false,
            ..facts()
        }));
        assert!(!is_stale(&SpoolFacts {
            quiet_secs: MIN_QUIET_SECS - 1,
            ..facts()
        }));
    }

    #[test]
    fn crumb_files() {
        assert!(is_crumb_file_of("live-0000000012-001.crumb", "live"));
        assert!(!is_crumb_file_of("live-0000000012-001.crumb", "liv"));
        assert!(!is_crumb_file_of("live2-0000000012-001.crumb", "live"));
        assert!(!is_crumb_file_of("live-12-1.crumb", "live"));
        assert!(!is_crumb_file_of("live-0000000012-001.txt", "live"));
        assert!(!is_crumb_file_of("notes.txt", "live"));
    }
}
