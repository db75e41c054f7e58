//! Reading a workspace folder: its definition files and template bodies, each resolved
//! inside the folder and bounded in size. The only I/O of the crate.

use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::yaml::MAX_YAML_BYTES;
use crate::{SourceFile, TEMPLATE_FOLDER, is_definition_file};

/// The largest template file, in bytes: a message body past this would be refused at
/// render time anyway (the rendered part's limit is the same).
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

/// A file of the folder that is not read, and why: reported where a template names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    /// The file's name, as a [`SourceFile`] would have it.
    pub name: String,
    pub message: String,
    pub help: String,
}

/// What a folder holds.
pub(crate) struct Folder {
    pub files: Vec<SourceFile>,
    pub refused: Vec<Refused>,
}

/// Reads the folder at `path`; a missing or empty folder, or a file that cannot be read or
/// is not UTF-8, is an error.
pub(crate) fn read(path: &Path) -> Result<Folder, Vec<Diagnostic>> {
    let folder = path.display().to_string();
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(vec![Diagnostic::whole(folder, "workspace folder not found", None)]);
        }
        Err(e) => {
            return Err(vec![Diagnostic::whole(folder, format!("cannot read the workspace folder: {e}"), None)]);
        }
    };
    let root = match path.canonicalize() {
        Ok(root) => root,
        Err(e) => return Err(vec![Diagnostic::whole(folder, format!("cannot read the workspace folder: {e}"), None)]),
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        let help = Some("put segments, journey and health definitions in `*.yaml` files there".to_string());
        return Err(vec![Diagnostic::whole(folder, "no workspace files (*.yaml, *.yml) in the folder", help)]);
    }
    let mut bodies = Vec::new();
    template_files(&path.join(TEMPLATE_FOLDER), 0, &mut bodies);
    bodies.sort();
    paths.extend(bodies);
    let mut files = Vec::new();
    let mut refused = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        let name = p.display().to_string();
        let definition = is_definition_file(&name);
        let limit = if definition { MAX_YAML_BYTES } else { MAX_TEMPLATE_BYTES };
        match admit(&root, &p, limit, definition) {
            Ok(()) => {}
            Err(Some((message, help))) => {
                refused.push(Refused { name, message, help });
                continue;
            }
            Err(None) => {}
        }
        match std::fs::read(&p) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => files.push(SourceFile { name, text }),
                Err(_) => {
                    problems.push(Diagnostic::whole(name, "not UTF-8 text", Some("save the file as UTF-8".into())))
                }
            },
            Err(e) => problems.push(Diagnostic::whole(name, format!("cannot read the file: {e}"), None)),
        }
    }
    if problems.is_empty() { Ok(Folder { files, refused }) } else { Err(problems) }
}

/// Whether the file at `path` may be read: it resolves inside the folder `root` (a link
/// may point elsewhere in the folder, never out of it) and is at most `limit` bytes.
/// `Err(None)`: it could not be looked at (reading it reports why).
fn admit(root: &Path, path: &Path, limit: usize, definition: bool) -> Result<(), Option<(String, String)>> {
    let real = path.canonicalize().map_err(|_| None)?;
    let what = if definition { "workspace file" } else { "template file" };
    if !real.starts_with(root) {
        return Err(Some((
            format!("the {what} is a link to `{}`, outside the workspace folder", real.display()),
            format!("{what}s must be inside the workspace folder: copy the file into it instead of linking"),
        )));
    }
    let size = std::fs::metadata(&real).map_err(|_| None)?.len();
    if size > limit as u64 {
        return Err(Some(too_large(definition, size, limit)));
    }
    Ok(())
}

/// The message and help for a file of `size` bytes over its `limit`.
pub(crate) fn too_large(definition: bool, size: u64, limit: usize) -> (String, String) {
    let what = if definition { "workspace file" } else { "template file" };
    let help = if definition {
        "split the definitions over several `*.yaml` files in the folder"
    } else {
        "make the template smaller: a message this long would not render anyway"
    };
    (format!("the {what} is {} KiB; a {what} may be at most {} KiB", size.div_ceil(1024), limit / 1024), help.into())
}

/// Every file under `dir` (a few levels deep, hidden entries skipped), or nothing if it
/// does not exist.
fn template_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let p = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() && depth < 4 {
            template_files(&p, depth + 1, out);
        } else if p.is_file() && !is_definition_file(&p.display().to_string()) {
            out.push(p);
        }
    }
}
