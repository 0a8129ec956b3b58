//! Input adapters: read the files users already have and build one [`PlanInput`]. Each file's
//! kind is detected from its shape (docs/plan.md); several files combine (a cluster plus its
//! VNet; a template plus its parameters file; a Terraform module's .tf files).

pub mod arm;
pub mod azcli;
pub mod azure;
pub mod bicep;
pub mod bicepeval;
pub mod hcl;
pub mod limits;
pub mod spans;
pub mod spec;
pub mod terraform;
pub mod tfavmvnet;
pub mod tfeval;
pub mod tfmodule;
pub mod tfvarsonly;
pub mod value;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::{Cluster, Origin, PlanInput, Source};
use value::{get_ci, has, Obj};

/// Input that cannot be used: names the file and the position or key (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {key}: {message}")]
    Field {
        file: String,
        key: String,
        message: String,
    },
    #[error("{file}: {message}")]
    Shape { file: String, message: String },
    #[error("{message}")]
    Combine { message: String },
}

/// What one JSON/YAML document was detected as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Spec,
    AksShow,
    ArmCluster,
    NodePool,
    Vnet,
    ArmTemplate,
    ArmParameters,
    RestExample,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Spec => "aksnet spec",
            Kind::AksShow => "az aks show",
            Kind::ArmCluster => "ARM managedClusters (GET)",
            Kind::NodePool => "az aks nodepool show",
            Kind::Vnet => "az network vnet show",
            Kind::ArmTemplate => "ARM template",
            Kind::ArmParameters => "ARM parameters file",
            Kind::RestExample => "REST API example",
        }
    }
}

fn type_of(v: &Value) -> String {
    get_ci(v, "type")
        .and_then(|(_, t)| t.as_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Detect a document's kind from its keys.
pub fn detect(v: &Value) -> Option<Kind> {
    if !v.is_object() {
        return None;
    }
    let api = get_ci(v, "apiVersion")
        .and_then(|(_, s)| s.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if api.starts_with("aksnet")
        || ((has(v, "cluster") || has(v, "vnet") || has(v, "vnets"))
            && !has(v, "properties")
            && !has(v, "resources"))
    {
        return Some(Kind::Spec);
    }
    if arm::is_template(v) {
        return Some(Kind::ArmTemplate);
    }
    if arm::is_parameters_file(v) {
        return Some(Kind::ArmParameters);
    }
    if has(v, "responses") && has(v, "parameters") {
        return Some(Kind::RestExample);
    }
    let ty = type_of(v);
    let props = get_ci(v, "properties").map(|(_, p)| p);
    let p = props.unwrap_or(v);
    if ty.ends_with("managedclusters/agentpools") || has(p, "typePropertiesType") {
        return Some(Kind::NodePool);
    }
    if ty.ends_with("managedclusters") || has(p, "agentPoolProfiles") || has(p, "networkProfile") {
        return Some(if props.is_some() {
            Kind::ArmCluster
        } else {
            Kind::AksShow
        });
    }
    if ty.ends_with("virtualnetworks") || has(p, "addressSpace") {
        return Some(Kind::Vnet);
    }
    if has(v, "name") && (has(p, "maxPods") || has(p, "vmSize")) {
        return Some(Kind::NodePool);
    }
    None
}

/// Parse JSON (comments allowed) or YAML, with the error position.
pub fn parse_document(file: &str, text: &str) -> Result<Value, InputError> {
    let json_first = Path::new(file)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{')
        || text.trim_start().starts_with('[');
    match serde_json::from_str::<Value>(&value::strip_json_comments(text)) {
        Ok(v) => Ok(v),
        Err(je) => {
            if json_first {
                return Err(InputError::Syntax {
                    file: file.into(),
                    line: je.line(),
                    column: je.column(),
                    message: format!("invalid JSON: {je}"),
                });
            }
            serde_norway::from_str::<Value>(text).map_err(|ye| {
                let (line, column) = ye
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                InputError::Syntax {
                    file: file.into(),
                    line,
                    column,
                    message: format!("invalid YAML: {ye}"),
                }
            })
        }
    }
}

/// What `aksnet plan` reads, for the "format not supported" message.
pub const SUPPORTED: &str = "an aksnet spec (YAML/JSON), az aks show / az aks nodepool show / az network vnet show JSON, an ARM GET response or REST API example, an ARM template (+ parameters file), Terraform .tf/.tfvars/.tfvars.json, Bicep (.bicep, .bicepparam), az CLI scripts (.azcli, .sh) and the az code blocks of Markdown (.md)";

/// A file that is neither JSON nor YAML: say the format is not supported (Bicep, shell
/// scripts, ...) and list what is, instead of a YAML parser's complaint at line 0.
fn unsupported(file: &str, ext: &str, parse_error: InputError) -> InputError {
    if matches!(ext, "json" | "yaml" | "yml") {
        return parse_error;
    }
    not_supported(file, ext)
}

/// The "format not supported" error for a file of extension `ext`.
fn not_supported(file: &str, ext: &str) -> InputError {
    let what = match ext {
        "ps1" => "a PowerShell script",
        "sh" | "bash" | "azcli" => "a shell script",
        "md" => "Markdown",
        "hcl" => "HCL outside Terraform (.tf)",
        "" => "a file without an extension that is neither JSON nor YAML",
        _ => "this file type",
    };
    InputError::Shape {
        file: file.into(),
        message: format!("format not supported ({what}); supported: {SUPPORTED}"),
    }
}

struct Loader {
    input: PlanInput,
    cluster_file: Option<String>,
    /// String values of each JSON/YAML file with their lines (an unresolved ARM expression's
    /// line).
    string_lines: HashMap<String, HashMap<String, usize>>,
}

impl Loader {
    /// An az CLI script or a Markdown file's az code blocks (docs/plan.md, "az CLI scripts").
    fn script(&mut self, file: &str, text: &str, markdown: bool) -> Result<(), InputError> {
        // `$(...)` substitutions are expanded recursively: bound their nesting first (in a
        // Markdown file, only the code blocks count; prose may leave brackets open).
        if markdown {
            for (first, block) in azcli::markdown_blocks(text) {
                limits::check_nesting_hcl(file, &block, false).map_err(|e| match e {
                    InputError::Syntax {
                        file,
                        line,
                        column,
                        message,
                    } => InputError::Syntax {
                        file,
                        line: line + first - 1,
                        column,
                        message,
                    },
                    other => other,
                })?;
            }
        } else {
            limits::check_nesting_hcl(file, text, false)?;
        }
        let found = azcli::read(file, text, markdown);
        let mut kind = if markdown {
            "Markdown az CLI blocks".to_string()
        } else {
            "az CLI script".to_string()
        };
        if found.other_clusters > 0 {
            kind.push_str(&format!(
                " (first az aks create planned, {} more ignored)",
                found.other_clusters
            ));
        }
        let loc = |v: &Value| {
            v.get(arm::LOCATION_KEY)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        if let Some(c) = &found.cluster {
            let mut cl = azure::read_cluster(&Obj::new(c, "az aks create", file))?;
            cl.location = loc(c);
            for (p, raw) in cl.pools.iter_mut().zip(
                c.pointer("/properties/agentPoolProfiles")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            ) {
                p.location = loc(raw);
            }
            self.set_cluster(file, cl, Origin::AzScript)?;
        } else if self.cluster_file.is_none() {
            self.input.origin = Origin::AzScript;
        }
        for p in &found.pools {
            let mut pool = azure::read_pool(&Obj::new(p, "az aks nodepool", file))?;
            pool.location = loc(p);
            self.input.extra_pools.push(pool);
        }
        for v in &found.vnets {
            let mut vn = azure::read_vnet(&Obj::new(v, "az network vnet", file))?;
            vn.location = loc(v);
            let raws = v.pointer("/properties/subnets").and_then(Value::as_array);
            for (s, raw) in vn.subnets.iter_mut().zip(raws.into_iter().flatten()) {
                s.location = loc(raw);
            }
            self.input.vnets.push(vn);
        }
        self.input.input_defaults.extend(found.defaults);
        self.input.sources.push(Source {
            file: file.to_string(),
            kind,
        });
        Ok(())
    }

    fn set_cluster(&mut self, file: &str, c: Cluster, origin: Origin) -> Result<(), InputError> {
        if let Some(prev) = &self.cluster_file {
            return Err(InputError::Combine {
                message: format!(
                    "{file}: a second cluster (the first is in {prev}); plan one cluster at a time"
                ),
            });
        }
        self.cluster_file = Some(file.to_string());
        self.input.cluster = Some(c);
        self.input.origin = origin;
        Ok(())
    }

    fn document(&mut self, file: &str, v: &Value, kind: Kind) -> Result<(), InputError> {
        let o = Obj::new(v, "", file);
        match kind {
            Kind::Spec => {
                let had = self.input.cluster.is_some();
                spec::read(&o, &mut self.input)?;
                if !had && self.input.cluster.is_some() {
                    let c = self.input.cluster.take().unwrap_or_default();
                    self.set_cluster(file, c, Origin::Spec)?;
                }
            }
            Kind::AksShow => self.set_cluster(file, azure::read_cluster(&o)?, Origin::AzCli)?,
            Kind::ArmCluster => self.set_cluster(file, azure::read_cluster(&o)?, Origin::Arm)?,
            Kind::NodePool => self.input.extra_pools.push(azure::read_pool(&o)?),
            Kind::Vnet => self.input.vnets.push(azure::read_vnet(&o)?),
            Kind::RestExample => {
                let body = ["200", "201"]
                    .iter()
                    .find_map(|c| {
                        get_ci(v, "responses")
                            .and_then(|(_, r)| get_ci(r, c))
                            .and_then(|(_, r)| get_ci(r, "body"))
                            .map(|(_, b)| b)
                    })
                    .or_else(|| {
                        get_ci(v, "parameters")
                            .and_then(|(_, p)| get_ci(p, "parameters"))
                            .map(|(_, b)| b)
                    })
                    .ok_or_else(|| InputError::Shape {
                        file: file.into(),
                        message: "REST example without responses.200.body or parameters.parameters"
                            .into(),
                    })?;
                let k = detect(body).filter(|k| matches!(k, Kind::ArmCluster | Kind::AksShow | Kind::NodePool | Kind::Vnet)).ok_or_else(|| InputError::Shape {
                    file: file.into(),
                    message: "REST example body is not a managed cluster, agent pool or virtual network".into(),
                })?;
                let k = if k == Kind::AksShow {
                    Kind::ArmCluster
                } else {
                    k
                };
                self.document(file, body, k)?;
            }
            Kind::ArmTemplate | Kind::ArmParameters => {}
        }
        Ok(())
    }
}

fn read_text(p: &Path) -> Result<String, InputError> {
    limits::read_text(p)
}

/// Read every file and build the plan input.
pub fn load_files(paths: &[PathBuf]) -> Result<PlanInput, InputError> {
    let mut docs = Vec::new();
    for p in paths {
        docs.push((p.clone(), read_text(p)?));
    }
    load_texts(&docs)
}

/// Build the plan input from (name, text) pairs; the name's extension picks Terraform.
pub fn load_texts(docs: &[(PathBuf, String)]) -> Result<PlanInput, InputError> {
    value::take_unresolved();
    let (mut input, strings) = load_texts_inner(docs)?;
    input.unresolved = value::take_unresolved();
    // An expression of a JSON/YAML file: the line it is written on rather than its object's.
    for u in &mut input.unresolved {
        let line = strings
            .get(&u.file)
            .and_then(|s| spans::line_of_expression(s, &u.expression));
        if let Some(l) = line {
            u.location = Some(format!("{}:{l}", u.file));
        }
    }
    Ok(input)
}

/// The plan input and the string lines of its JSON/YAML files.
type Loaded = (PlanInput, HashMap<String, HashMap<String, usize>>);

fn load_texts_inner(docs: &[(PathBuf, String)]) -> Result<Loaded, InputError> {
    let paths: Vec<&PathBuf> = docs.iter().map(|(p, _)| p).collect();
    let mut l = Loader {
        input: PlanInput::default(),
        cluster_file: None,
        string_lines: HashMap::new(),
    };
    if paths.is_empty() {
        return Err(InputError::Combine {
            message:
                "no input files: give a spec file, az/ARM JSON, an ARM template or Terraform files"
                    .into(),
        });
    }
    let mut pend = Pending::default();
    for (p, text) in docs {
        l.file(p, text, &mut pend)?;
    }
    let strings = std::mem::take(&mut l.string_lines);
    Ok((l.finish(pend, &paths)?, strings))
}

/// What is collected over all files before it can be read (templates need their parameters
/// files, Terraform and Bicep files need each other).
#[derive(Default)]
struct Pending {
    templates: Vec<arm::Template>,
    bicep_files: Vec<bicepeval::BicepFile>,
    bicep_params: HashMap<String, Value>,
    params: HashMap<String, Value>,
    tf_files: Vec<(String, String, terraform::TfKind)>,
}

impl Loader {
    /// One input file: Bicep, a script or Markdown, Terraform, or JSON/YAML documents.
    fn file(&mut self, p: &Path, text: &str, pend: &mut Pending) -> Result<(), InputError> {
        let file = p.display().to_string();
        let ext = p
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let text = text.to_string();
        let lower = file.to_ascii_lowercase();
        let tf_kind = if ext == "tf" {
            Some(terraform::TfKind::Config)
        } else if ext == "tfvars" {
            Some(terraform::TfKind::Vars)
        } else if lower.ends_with(".tfvars.json") {
            Some(terraform::TfKind::VarsJson)
        } else {
            None
        };
        if ext == "bicep" || ext == "bicepparam" {
            let decls = bicep::parse(&file, &text)?;
            let f = bicepeval::BicepFile {
                file: file.clone(),
                decls,
            };
            if ext == "bicepparam" {
                pend.bicep_params.extend(bicepeval::bicepparam_values(&f));
            } else {
                pend.bicep_files.push(f);
            }
            self.input.sources.push(Source {
                file,
                kind: if ext == "bicep" {
                    "Bicep".into()
                } else {
                    "Bicep parameters".into()
                },
            });
            return Ok(());
        }
        if matches!(ext.as_str(), "azcli" | "sh" | "bash" | "md") {
            self.script(&file, &text, ext == "md")?;
            return Ok(());
        }
        if let Some(kind) = tf_kind {
            if kind == terraform::TfKind::VarsJson {
                limits::check_nesting_json(&file, &text)?;
            }
            pend.tf_files.push((file.clone(), text, kind));
            self.input.sources.push(Source {
                file,
                kind: if kind == terraform::TfKind::Config {
                    "Terraform".into()
                } else {
                    "Terraform variables".into()
                },
            });
            return Ok(());
        }
        self.documents(file, &ext, &text, pend)
    }

    /// A JSON or YAML file: one document or an array of them, each detected by its shape.
    fn documents(
        &mut self,
        file: String,
        ext: &str,
        text: &str,
        pend: &mut Pending,
    ) -> Result<(), InputError> {
        limits::check_nesting_json(&file, text)?;
        let mut v = parse_document(&file, text).map_err(|e| unsupported(&file, ext, e))?;
        let lines = spans::lines_of(text);
        let docs: Vec<&mut Value> = match &mut v {
            Value::Array(a) => a.iter_mut().collect(),
            other => vec![other],
        };
        let many = docs.len() > 1;
        let mut kinds = Vec::new();
        for (i, d) in docs.into_iter().enumerate() {
            // Text of another format can parse as a YAML string (a PowerShell line, HCL
            // outside Terraform): say the format is not supported, not "unknown keys".
            if !d.is_object() && !matches!(ext, "json" | "yaml" | "yml") {
                return Err(not_supported(&file, ext));
            }
            let kind = detect(d).ok_or_else(|| {
                let keys: Vec<String> = d.as_object().map(|m| m.keys().take(8).cloned().collect()).unwrap_or_default();
                InputError::Shape {
                    file: file.clone(),
                    message: format!(
                        "{}not a recognised input (aksnet spec, az aks show, az aks nodepool show, az network vnet show, ARM GET/REST example, ARM template or parameters file); top-level keys: [{}]",
                        if many { format!("element [{i}]: ") } else { String::new() },
                        keys.join(", ")
                    ),
                }
            })?;
            // Where each object was written; values an evaluator computes with stay as
            // written (an extra key would change `length()` or `empty()`).
            let skip: &[&str] = match kind {
                Kind::ArmTemplate => &["parameters", "variables", "outputs", "functions"],
                _ => &[],
            };
            if kind != Kind::ArmParameters {
                let root = if many { format!("/{i}") } else { String::new() };
                spans::annotate(d, &root, &lines, &file, skip);
            }
            match kind {
                Kind::ArmTemplate => pend.templates.push(arm::Template {
                    file: file.clone(),
                    value: (*d).clone(),
                }),
                Kind::ArmParameters => pend.params.extend(arm::parameter_values(d)),
                k => self.document(&file, d, k)?,
            }
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        let kind = kinds
            .iter()
            .map(|k| k.label())
            .collect::<Vec<_>>()
            .join(", ");
        self.string_lines.insert(file.clone(), lines.strings);
        self.input.sources.push(Source { file, kind });
        Ok(())
    }

    /// After every file: Bicep into a template, templates and Terraform read, all combined.
    fn finish(mut self, mut pend: Pending, paths: &[&PathBuf]) -> Result<PlanInput, InputError> {
        let l = &mut self;
        if !pend.bicep_files.is_empty() {
            // JSON parameters files apply to Bicep too (their keys are lower-cased).
            let mut all = std::mem::take(&mut pend.bicep_params);
            all.extend(pend.params.iter().map(|(k, v)| (k.clone(), v.clone())));
            pend.templates.push(arm::Template {
                file: pend.bicep_files[0].file.clone(),
                value: bicepeval::template(&pend.bicep_files, &all),
            });
        }
        for t in &pend.templates {
            let found = arm::read(t, &pend.params)?;
            if let Some(c) = found.cluster {
                l.set_cluster(&t.file, c, Origin::ArmTemplate)?;
            }
            l.input
                .extra_pools
                .extend(found.pools.into_iter().map(|(_, p)| p));
            l.input.vnets.extend(found.vnets);
            if l.input.origin == Origin::Spec && l.cluster_file.is_none() {
                l.input.origin = Origin::ArmTemplate;
            }
        }
        if !pend.tf_files.is_empty() {
            let found = terraform::read(&pend.tf_files)?;
            if let Some((file, c)) = found.cluster {
                l.set_cluster(&file, c, Origin::Terraform)?;
            }
            l.input.extra_pools.extend(found.pools);
            l.input.vnets.extend(found.vnets);
            if l.cluster_file.is_none() {
                l.input.origin = Origin::Terraform;
            }
        }
        if l.input.cluster.is_none() && l.input.extra_pools.is_empty() && l.input.vnets.is_empty() {
            return Err(InputError::Combine {
                message: format!(
                    "{}: no AKS cluster, node pool or virtual network found",
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(std::mem::take(&mut l.input))
    }
}
