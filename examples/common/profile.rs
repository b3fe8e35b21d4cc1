// SPDX-License-Identifier: MPL-2.0
//! A swarm profile file (`bench/profiles/*.toml`): the channel's upload and the mix of
//! client access links. The swarm bench shapes real links with it and the simulator
//! gives its peers the same capacities, so both measure the same swarm.

use serde::Deserialize;

/// One class of access link. Rates in kbit/s (1 kbit = 1000 bit).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub name: String,
    pub down_kbps: f64,
    pub up_kbps: f64,
    /// One-way delay added on the link (needs the kernel's netem qdisc).
    #[serde(default)]
    pub delay_ms: f64,
    /// Packet loss on the link, percent (needs netem).
    #[serde(default)]
    pub loss_pct: f64,
    /// Relative share of the clients with this link.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// No link yet (a weight of one, like a `[[link]]` without one).
impl Default for Link {
    fn default() -> Self {
        Link {
            name: String::new(),
            down_kbps: 0.0,
            up_kbps: 0.0,
            delay_ms: 0.0,
            loss_pct: 0.0,
            weight: 1.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// u_s: the channel's (super seed's, or the web server's) upload, kbit/s.
    pub channel_up_kbps: f64,
    #[serde(rename = "link")]
    pub links: Vec<Link>,
}

impl Profile {
    pub fn load(path: &std::path::Path) -> Result<Profile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read profile {}: {e}", path.display()))?;
        let p: Profile =
            toml::from_str(&text).map_err(|e| format!("bad profile {}: {e}", path.display()))?;
        if p.links.is_empty() {
            return Err(format!("profile {} has no [[link]]", path.display()));
        }
        for l in &p.links {
            if l.down_kbps <= 0.0 || l.up_kbps <= 0.0 || l.weight <= 0.0 {
                return Err(format!(
                    "profile {}: link {} needs positive down_kbps, up_kbps and weight",
                    path.display(),
                    l.name
                ));
            }
        }
        Ok(p)
    }

    /// The link of each of `n` clients: smooth weighted round robin, so every prefix
    /// of the audience has the profile's mix as closely as integers allow.
    pub fn assign(&self, n: usize) -> Vec<Link> {
        let total: f64 = self.links.iter().map(|l| l.weight).sum();
        let mut credit = vec![0.0; self.links.len()];
        (0..n)
            .map(|_| {
                for (c, l) in credit.iter_mut().zip(&self.links) {
                    *c += l.weight;
                }
                let best = (0..credit.len())
                    .max_by(|&a, &b| credit[a].total_cmp(&credit[b]).then(b.cmp(&a)))
                    .expect("at least one link");
                credit[best] -= total;
                self.links[best].clone()
            })
            .collect()
    }
}
