//! Embeds the built web UI (`web/dist`, made by `npm run build` in `web/`) in the binary,
//! so a release binary serves its UI with nothing else installed. Without a built UI the
//! list is empty and the server serves a page saying how to build it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let dist = root.join("web").join("dist");
    // Cargo watches a directory recursively: a rebuilt UI re-runs this script. A watched
    // path that does not exist would re-run it (and rebuild the crate) on every build, so
    // the (ignored) directory is created when missing.
    let _ = std::fs::create_dir_all(&dist);
    println!("cargo:rerun-if-changed=web/dist");
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
    }
    files.sort();

    let mut out = String::from("/// The built web UI: (path under `web/dist`, contents).\n");
    out.push_str("pub static WEB_ASSETS: &[(&str, &[u8])] = &[\n");
    for (relative, absolute) in &files {
        let _ = writeln!(out, "    ({relative:?}, include_bytes!({absolute:?})),");
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("web_assets.rs");
    std::fs::write(target, out).expect("write web_assets.rs");
}

fn collect(base: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(base, &path, files);
        } else if let Ok(relative) = path.strip_prefix(base) {
            let relative = relative.to_string_lossy().replace('\\', "/");
            files.push((relative, path.to_string_lossy().into_owned()));
        }
    }
}
