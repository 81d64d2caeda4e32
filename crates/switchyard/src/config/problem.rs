//! How config problems read: one block per problem for people, and the same content as
//! JSON for `config check --json` and the reload endpoint.

use std::fmt;

use serde_json::{Value, json};

use super::{ConfigErrors, ConfigProblem};

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.location {
            write!(f, "{at}: ")?;
        }
        f.write_str(self.id)?;
        if !self.key.is_empty() {
            write!(f, " {}", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.remedy.is_empty() {
            write!(f, "\n    fix: {}", self.remedy)?;
        }
        Ok(())
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        let noun = if n == 1 { "problem" } else { "problems" };
        match &self.path {
            Some(p) => writeln!(f, "{} has {n} {noun}:", p.display())?,
            None => writeln!(f, "config: {n} {noun}:")?,
        }
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigProblem {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "file": self.location.as_ref().map(|l| l.file.display().to_string()),
            "line": self.location.as_ref().map(|l| l.line),
            "column": self.location.as_ref().map(|l| l.column),
            "key": self.key,
            "message": self.message,
            "remedy": self.remedy,
        })
    }
}

impl ConfigErrors {
    pub fn to_json(&self) -> Value {
        json!({
            "ok": false,
            "config": self.path.as_ref().map(|p| p.display().to_string()),
            "problems": self.problems.iter().map(ConfigProblem::to_json).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::Location;

    #[test]
    fn one_block_per_problem_with_location_id_key_and_fix() {
        let errors = ConfigErrors {
            path: Some(PathBuf::from("c.yaml")),
            problems: vec![
                ConfigProblem {
                    id: "CFG-01",
                    location: Some(Location { file: "c.yaml".into(), line: 4, column: 16 }),
                    key: "model_list[0].litellm_params.api_key".into(),
                    message: "K is not set".into(),
                    remedy: "export K".into(),
                },
                ConfigProblem {
                    id: "CFG-08",
                    location: None,
                    key: String::new(),
                    message: "no config".into(),
                    remedy: "pass --config".into(),
                },
            ],
        };
        assert_eq!(
            errors.to_string(),
            "c.yaml has 2 problems:\n\
             c.yaml:4:16: CFG-01 model_list[0].litellm_params.api_key: K is not set\n    fix: export K\n\
             \n\
             CFG-08: no config\n    fix: pass --config\n"
        );
        let j = errors.to_json();
        assert_eq!(j["problems"][0]["line"], 4);
        assert_eq!(j["problems"][0]["column"], 16);
        assert_eq!(j["problems"][1]["file"], Value::Null);
    }
}
