//! Renders clap definitions as the tables of `docs/CONFIGURATION.md`: one table per program,
//! one row per flag, naming the subcommands that take it. A test compares the file with this
//! rendering, so the document cannot drift from the code.

use std::collections::BTreeMap;

use clap::{ArgAction, Command};

/// One program's table. A flag that several subcommands share, with the same meaning and
/// default, appears once.
pub fn render(program: &Command) -> String {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    collect(program, "", &mut rows);
    let mut out = format!("## `{}`\n\n", program.get_name());
    if let Some(about) = program.get_about() {
        out.push_str(&format!("{about}.\n\n"));
    }
    out.push_str("| flag | environment | default | used by | meaning |\n|---|---|---|---|---|\n");
    let mut rows: Vec<Row> = rows.into_values().collect();
    rows.sort_by(|a, b| a.env.is_none().cmp(&b.env.is_none()).then_with(|| a.env.cmp(&b.env)).then_with(|| a.flag.cmp(&b.flag)));
    for r in rows {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            r.flag,
            r.env.map(|e| format!("`{e}`")).unwrap_or_default(),
            r.default.map(|d| format!("`{d}`")).unwrap_or_default(),
            r.used_by.join(", "),
            r.help.replace('|', "\\|"),
        ));
    }
    out
}

struct Row {
    flag: String,
    env: Option<String>,
    default: Option<String>,
    used_by: Vec<String>,
    help: String,
}

fn collect(cmd: &Command, path: &str, rows: &mut BTreeMap<String, Row>) {
    for sub in cmd.get_subcommands() {
        let path = if path.is_empty() { sub.get_name().to_owned() } else { format!("{path} {}", sub.get_name()) };
        collect(sub, &path, rows);
    }
    for arg in cmd.get_arguments() {
        if arg.is_global_set() != path.is_empty() {
            continue; // the program's own flags are the global ones; a subcommand lists its own
        }
        let Some(long) = arg.get_long() else { continue };
        if matches!(arg.get_action(), ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version) {
            continue;
        }
        let defaults: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        let default = (!defaults.is_empty()).then(|| defaults.join(",")).filter(|d| !d.is_empty());
        let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string().replace('\n', " ")).unwrap_or_default();
        // A flag that means something else in another subcommand gets a row of its own.
        let key = format!("--{long}\u{0}{env:?}\u{0}{default:?}\u{0}{help}");
        let row = rows.entry(key).or_insert_with(|| Row { flag: format!("--{long}"), env, default, used_by: Vec::new(), help });
        row.used_by.push(if path.is_empty() { "every command".to_owned() } else { format!("`{path}`") });
    }
}
