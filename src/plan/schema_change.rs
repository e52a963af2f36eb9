//! A dataset schema the file changed: Personalize schemas cannot change, so a document that only adds
//! optional fields becomes a new schema `<name>-<hash>` the dataset moves to (UpdateDataset); any
//! other change stays a conflict, explained.

use super::json_differences;
use super::observed::{Observation, SchemaObs};
use crate::spec::avro;
use crate::spec::kinds::DatasetType;
use crate::spec::model::Schema;
use crate::spec::names;

/// The schema a dataset moves to for the file's document.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// `<name>-<hash of the document>` ([`names::schema_revision`]).
    pub name: String,
    /// Its ARN, derived from the file schema's (schemas are named in the account).
    pub arn: String,
    /// Whether it exists already (created by an earlier run).
    pub exists: bool,
    /// The fields the document adds to the one the dataset uses.
    pub added: Vec<String>,
}

/// The name of a schema from its ARN (`arn:…:schema/<name>`).
pub fn schema_name(arn: &str) -> &str {
    arn.rsplit_once("schema/").map_or(arn, |(_, name)| name)
}

/// The revision of `schema` for a dataset of `ty`, given Personalize's schema of that name
/// (`existing`, whose document differs from the file's) and the one the dataset uses now (`current`,
/// `None` when the dataset does not exist yet). `Err` lists why it cannot change in place.
pub fn revise(
    schema: &Schema,
    ty: DatasetType,
    existing: &SchemaObs,
    current: Option<&SchemaObs>,
    obs: &Observation,
) -> Result<Revision, Vec<String>> {
    let name = names::schema_revision(&schema.name, &schema.document_text());
    let arn = format!(
        "{}{name}",
        existing
            .arn
            .strip_suffix(schema.name.as_str())
            .unwrap_or_default()
    );
    let mut reasons = differences(schema, existing);
    if !existing.arn.ends_with(&format!("schema/{}", schema.name)) {
        reasons.push(format!(
            "schema: Personalize's ARN {} is not named {}",
            existing.arn, schema.name
        ));
        return Err(reasons);
    }
    let exists = match obs.schemas.get(&name) {
        Some(r) if r.document == schema.document => true,
        Some(_) => {
            reasons.push(format!(
                "schema: {name}, the name of the file's document, is taken by another document"
            ));
            return Err(reasons);
        }
        None => false,
    };
    let current = current.unwrap_or(existing);
    if current.arn == arn {
        return Ok(Revision {
            name,
            arn,
            exists,
            added: Vec::new(),
        });
    }
    let old = match avro::parse(&current.document) {
        Ok(old) => old,
        Err(_) => {
            reasons.push(format!(
                "schema: Personalize's document of {} cannot be read, so the change cannot be checked",
                schema_name(&current.arn)
            ));
            return Err(reasons);
        }
    };
    match avro::in_place_change(&old, &schema.avro, ty) {
        Ok(added) => Ok(Revision {
            name,
            arn,
            exists,
            added,
        }),
        Err(problems) => {
            reasons.push(format!(
                "a schema cannot change in place, and the dataset cannot move to a new one (UpdateDataset) because {}; \
                 only new fields that accept null can be added. Give the schema a new name with a new dataset group, or undo the change",
                problems.join("; ")
            ));
            Err(reasons)
        }
    }
}

/// What differs between the file's document and Personalize's, field by field where possible.
pub fn differences(schema: &Schema, existing: &SchemaObs) -> Vec<String> {
    let mut detail = json_differences("schema", &schema.document, Some(&existing.document));
    if detail.is_empty() {
        detail = json_differences("schema", &existing.document, Some(&schema.document))
            .into_iter()
            .map(|d| format!("{d} (reversed: Personalize's document has it, the file's not)"))
            .collect();
    }
    if detail.is_empty() {
        detail.push("schema: the Avro documents differ".into());
    }
    detail
}
