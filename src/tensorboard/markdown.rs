//! Renders a config as a two-column Markdown table for TensorBoard's Text tab, as CleanRL
//! logs its hyperparameters.

use anyhow::Context;
use serde_json::Value;

/// `| key | value |` rows for every leaf of `config`, sorted by key, nested keys joined
/// with dots.
pub fn config_markdown(config: &impl serde::Serialize) -> anyhow::Result<String> {
    let value = serde_json::to_value(config).context("turning the config into a table")?;
    let mut rows = Vec::new();
    flatten("", &value, &mut rows);
    let mut out = String::from("| key | value |\n|---|---|\n");
    for (key, value) in rows {
        out.push_str(&format!("| {} | {} |\n", escape(&key), escape(&value)));
    }
    Ok(out)
}

fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, rows);
            }
        }
        Value::String(s) => rows.push((prefix.to_owned(), s.clone())),
        Value::Null => rows.push((prefix.to_owned(), "none".to_owned())),
        other => rows.push((prefix.to_owned(), other.to_string())),
    }
}

/// Keeps a cell inside its table cell: pipes escaped, line breaks as `<br>`.
fn escape(cell: &str) -> String {
    cell.replace('|', "\\|").replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Inner {
        hidden: Vec<u32>,
        lr: f64,
    }
    #[derive(serde::Serialize)]
    struct Config {
        agent: &'static str,
        tau: Option<f64>,
        note: &'static str,
        net: Inner,
    }

    #[test]
    fn nested_config_becomes_dotted_rows() {
        let cfg = Config {
            agent: "sac",
            tau: None,
            note: "a|b\nc",
            net: Inner { hidden: vec![256, 256], lr: 3e-4 },
        };
        let md = config_markdown(&cfg).unwrap();
        let expected = "| key | value |\n|---|---|\n| agent | sac |\n| net.hidden | [256,256] |\n\
                        | net.lr | 0.0003 |\n| note | a\\|b<br>c |\n| tau | none |\n";
        assert_eq!(md, expected);
    }
}
