// SPDX-License-Identifier: MPL-2.0
//! The plugin's interface (elements, pads and caps, properties with defaults and
//! ranges, messages, stats structures) as `plugins/crumbs.json`, generated from the built plugin. The
//! test fails when the plugin and the committed file differ, so an interface change
//! shows in review. Regenerate with `CRUMBS_UPDATE_INTERFACE=1 cargo test --test interface`.

mod common;

use gst::glib;
use gst::prelude::*;
use gstcrumbs::interface::{MESSAGES, STATS, StructDef};
use serde_json::{Value, json};

fn range<T: serde::Serialize>(min: T, max: T) -> Value {
    json!({ "min": min, "max": max })
}

fn property(p: &glib::ParamSpec) -> Value {
    let flags = p.flags();
    let mut f = Vec::new();
    if flags.contains(glib::ParamFlags::READABLE) {
        f.push("readable");
    }
    if flags.contains(glib::ParamFlags::WRITABLE) {
        f.push("writable");
    }
    if flags.contains(gst::PARAM_FLAG_MUTABLE_PLAYING) {
        f.push("changeable in PLAYING");
    } else if flags.contains(gst::PARAM_FLAG_MUTABLE_PAUSED) {
        f.push("changeable in PAUSED");
    } else if flags.contains(gst::PARAM_FLAG_MUTABLE_READY) {
        f.push("changeable in READY");
    }
    let default = p.default_value();
    // A structure default has no stable text; a sample's (BaseSink's `last-sample`)
    // is NULL, and serializing a NULL sample is a GStreamer-CRITICAL.
    let no_text = [gst::Structure::static_type(), gst::Sample::static_type()];
    let default = if no_text.contains(&default.type_()) {
        Value::Null
    } else {
        default
            .serialize()
            .map(|s| Value::String(s.to_string()))
            .unwrap_or(Value::Null)
    };
    let r = if let Some(p) = p.downcast_ref::<glib::ParamSpecUInt>() {
        range(p.minimum() as u64, p.maximum() as u64)
    } else if let Some(p) = p.downcast_ref::<glib::ParamSpecInt>() {
        range(p.minimum() as i64, p.maximum() as i64)
    } else if let Some(p) = p.downcast_ref::<glib::ParamSpecUInt64>() {
        range(p.minimum(), p.maximum())
    } else if let Some(p) = p.downcast_ref::<glib::ParamSpecInt64>() {
        range(p.minimum(), p.maximum())
    } else if let Some(p) = p.downcast_ref::<glib::ParamSpecDouble>() {
        range(p.minimum(), p.maximum())
    } else {
        Value::Null
    };
    json!({
        "type": p.value_type().name(),
        "blurb": p.blurb(),
        "flags": f,
        "default": default,
        "range": r,
    })
}

fn describe() -> Value {
    common::init();
    let registry = gst::Registry::get();
    let plugin = registry
        .find_plugin("crumbs")
        .expect("crumbs plugin registered");
    let mut elements = serde_json::Map::new();
    let mut features: Vec<_> = registry.features_by_plugin("crumbs").into_iter().collect();
    features.sort_by_key(|f| f.name().to_string());
    for feature in features {
        let factory = feature
            .downcast::<gst::ElementFactory>()
            .expect("only elements");
        let element = factory.create().build().expect("element builds");
        let mut props = serde_json::Map::new();
        // Own properties only: what GstObject/GstBin give every element is left out.
        let base = glib::Object::static_type();
        for p in element.list_properties() {
            if p.owner_type() == base
                || p.owner_type() == gst::Object::static_type()
                || p.owner_type() == gst::Bin::static_type()
                || p.owner_type() == gst::Pipeline::static_type()
            {
                continue;
            }
            props.insert(p.name().to_string(), property(&p));
        }
        let pads: Vec<Value> = factory
            .static_pad_templates()
            .iter()
            .map(|t| {
                json!({
                    "name": t.name_template().to_string(),
                    "direction": format!("{:?}", t.direction()).to_lowercase(),
                    "presence": format!("{:?}", t.presence()).to_lowercase(),
                    "caps": t.caps().to_string(),
                })
            })
            .collect();
        let fields = |d: &StructDef| -> Vec<Value> {
            d.fields
                .iter()
                .map(|f| json!({"name": f.name, "type": f.ty.name(), "meaning": f.meaning}))
                .collect()
        };
        let messages: Vec<Value> = MESSAGES
            .iter()
            .filter(|m| m.element == factory.name())
            .map(|m| json!({"name": m.name, "when": m.when, "fields": fields(m)}))
            .collect();
        let stats = STATS
            .iter()
            .find(|d| d.element == factory.name())
            .map(|d| json!({"name": d.name, "fields": fields(d)}));
        elements.insert(
            factory.name().to_string(),
            json!({
                "long-name": factory.longname(),
                "klass": factory.klass(),
                "description": factory.description(),
                "rank": format!("{:?}", factory.rank()),
                "pads": pads,
                "properties": props,
                "messages": messages,
                "stats": stats,
            }),
        );
    }
    json!({
        "plugin": plugin.plugin_name().to_string(),
        "description": plugin.description().to_string(),
        "license": plugin.license().to_string(),
        "elements": elements,
    })
}

#[test]
fn interface_description_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/crumbs.json");
    let now = serde_json::to_string_pretty(&describe()).unwrap() + "\n";
    if std::env::var_os("CRUMBS_UPDATE_INTERFACE").is_some() {
        std::fs::write(&path, &now).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != now {
        let tmp = std::env::temp_dir().join("crumbs-interface.json");
        std::fs::write(&tmp, &now).unwrap();
        panic!(
            "plugins/crumbs.json is out of date: the built plugin's interface is in {} \
             (diff them; regenerate with CRUMBS_UPDATE_INTERFACE=1 cargo test --test interface)",
            tmp.display()
        );
    }
}

#[test]
fn every_property_has_a_blurb_and_kebab_case_name() {
    let d = describe();
    for (element, e) in d["elements"].as_object().unwrap() {
        for (name, p) in e["properties"].as_object().unwrap() {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{element}::{name}"
            );
            let blurb = p["blurb"].as_str().unwrap_or("");
            assert!(blurb.len() > 10, "{element}::{name} needs a blurb");
        }
    }
}

/// Each element's `stats` is exactly its definition in `src/interface.rs`, whatever
/// the state (messages are checked as they are posted, in every test's debug build).
#[test]
fn stats_structures_are_as_defined() {
    common::init();
    for def in STATS {
        let element = gst::ElementFactory::make(def.element).build().unwrap();
        let stats = element.property::<gst::Structure>("stats");
        def.check(&stats).unwrap();
        let blurb = element
            .find_property("stats")
            .unwrap()
            .blurb()
            .unwrap()
            .to_string();
        assert_eq!(blurb, def.blurb());
    }
    assert_eq!(
        STATS.iter().map(|d| d.element).collect::<Vec<_>>(),
        ["svcsegmenter", "crumbjoin", "crumbsink", "crumbsrc"]
    );
}

/// README's element sections name every field of every message and `stats`
/// structure: a message's paragraph (from its name to the next blank line) lists each
/// field as `field`, the `stats` row of the element's table each field by name.
#[test]
fn readme_names_every_message_and_stats_field() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let section = |element: &str| -> &str {
        let start = readme
            .find(&format!("### {element}\n"))
            .unwrap_or_else(|| panic!("README has no section ### {element}"));
        let rest = &readme[start + 4..];
        &rest[..rest.find("\n### ").unwrap_or(rest.len())]
    };
    let mut missing = Vec::new();
    for def in MESSAGES {
        let text = section(def.element);
        let Some(at) = text.find(&format!("`{}`", def.name)) else {
            missing.push(format!("message {}", def.name));
            continue;
        };
        let para = &text[at..];
        let para = &para[..para.find("\n\n").unwrap_or(para.len())];
        for f in def.fields {
            if !para.contains(&format!("`{}`", f.name)) {
                missing.push(format!("{}: `{}`", def.name, f.name));
            }
        }
    }
    for def in STATS {
        let text = section(def.element);
        let row = text
            .lines()
            .find(|l| l.starts_with("| `stats` |"))
            .unwrap_or_else(|| panic!("README's {} table has no stats row", def.element));
        let words: Vec<&str> = row
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .collect();
        for f in def.fields {
            if !words.contains(&f.name) {
                missing.push(format!("{} stats: {}", def.element, f.name));
            }
        }
    }
    assert!(missing.is_empty(), "README lacks: {missing:#?}");
}
