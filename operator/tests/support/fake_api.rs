//! A small in-memory Kubernetes API behind kube's `tower-test` mock service: GET of objects and
//! label-selected lists, server-side apply (PATCH) of objects and of `/status`, Event POSTs,
//! 404 `Status` for missing objects, and injected 409 conflicts. Every call is logged so tests
//! can assert what the controller did, in order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One API call the controller made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Option<Value>,
}

#[derive(Default)]
pub struct FakeApi {
    objects: Mutex<BTreeMap<String, Value>>,
    log: Mutex<Vec<Call>>,
    conflicts: Mutex<Vec<String>>,
    next_uid: Mutex<u64>,
}

impl FakeApi {
    /// A client talking to a new fake API.
    pub fn start() -> (Client, Arc<FakeApi>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = Arc::new(FakeApi::default());
        let api = Arc::clone(&fake);
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body: Option<Value> = serde_json::from_slice(&bytes).ok();
                let call = Call {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    query: parts.uri.query().unwrap_or_default().to_owned(),
                    body,
                };
                let (status, value) = api.respond(&call);
                api.log.lock().unwrap().push(call);
                send.send_response(
                    Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Body::from(serde_json::to_vec(&value).unwrap()))
                        .unwrap(),
                );
            }
        });
        (Client::new(service, "default"), fake)
    }

    /// Stores `obj` at its path (as if created by someone else).
    pub fn put(&self, obj: Value) {
        let path = path_of(&obj);
        self.objects.lock().unwrap().insert(path, obj);
    }

    /// Stores `value` as what a GET of `path` answers (a proxied endpoint, say).
    #[allow(dead_code)] // not every test binary proxies
    pub fn put_at(&self, path: &str, value: Value) {
        self.objects.lock().unwrap().insert(path.to_owned(), value);
    }

    /// The stored object at `path`.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.objects.lock().unwrap().get(path).cloned()
    }

    /// Changes a stored object.
    pub fn edit(&self, path: &str, f: impl FnOnce(&mut Value)) {
        f(self
            .objects
            .lock()
            .unwrap()
            .get_mut(path)
            .expect("object exists"));
    }

    /// The next write whose path ends with `suffix` answers 409 Conflict.
    pub fn conflict_once(&self, suffix: &str) {
        self.conflicts.lock().unwrap().push(suffix.to_owned());
    }

    /// Every call so far; clears the log.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn respond(&self, call: &Call) -> (StatusCode, Value) {
        if call.method != "GET" {
            let mut conflicts = self.conflicts.lock().unwrap();
            if let Some(i) = conflicts
                .iter()
                .position(|s| call.path.ends_with(s.as_str()))
            {
                conflicts.remove(i);
                return status(409, "Conflict", "the object has been modified");
            }
        }
        let mut objects = self.objects.lock().unwrap();
        match call.method.as_str() {
            "GET" if is_collection(&call.path) => {
                let selector = query_param(&call.query, "labelSelector");
                let prefix = format!("{}/", call.path);
                let items: Vec<Value> = objects
                    .iter()
                    .filter(|(p, _)| p.starts_with(&prefix) && !p[prefix.len()..].contains('/'))
                    .map(|(_, o)| o.clone())
                    .filter(|o| matches_labels(o, selector.as_deref()))
                    .collect();
                (
                    StatusCode::OK,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            "GET" => match objects.get(&call.path) {
                Some(o) => (StatusCode::OK, o.clone()),
                None => status(404, "NotFound", &format!("{} not found", call.path)),
            },
            "PATCH" if call.path.ends_with("/status") => {
                let base = call.path.trim_end_matches("/status");
                match objects.get_mut(base) {
                    Some(o) => {
                        o["status"] = call
                            .body
                            .as_ref()
                            .map_or(Value::Null, |b| b["status"].clone());
                        (StatusCode::OK, o.clone())
                    }
                    None => status(404, "NotFound", &format!("{base} not found")),
                }
            }
            "PATCH" => {
                let mut new = call.body.clone().unwrap_or_default();
                match objects.get(&call.path) {
                    Some(old) => {
                        new["metadata"]["uid"] = old["metadata"]["uid"].clone();
                        if !old["status"].is_null() {
                            new["status"] = old["status"].clone();
                        }
                    }
                    None => {
                        let mut uid = self.next_uid.lock().unwrap();
                        *uid += 1;
                        new["metadata"]["uid"] = json!(format!("uid-{uid}"));
                    }
                }
                objects.insert(call.path.clone(), new.clone());
                (StatusCode::OK, new)
            }
            "POST" => (StatusCode::CREATED, call.body.clone().unwrap_or_default()),
            _ => status(405, "MethodNotAllowed", "unsupported"),
        }
    }
}

fn status(code: u16, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap(),
        json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// `/api/v1/namespaces/ns/pods` and `/apis/g/v/namespaces/ns/plural` are collections.
fn is_collection(path: &str) -> bool {
    let segments = path.trim_matches('/').split('/').count();
    if path.starts_with("/api/") {
        segments == 5
    } else {
        segments == 6
    }
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn matches_labels(obj: &Value, selector: Option<&str>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        obj["metadata"]["labels"][k].as_str() == Some(v)
    })
}

/// The API path of an object from its apiVersion, kind, namespace and name.
pub fn path_of(obj: &Value) -> String {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = obj["metadata"]["name"].as_str().unwrap();
    let plural = match kind {
        "Model" => "models".to_owned(),
        "InferenceService" => "inferenceservices".to_owned(),
        "ModelRouter" => "modelrouters".to_owned(),
        "PersistentVolumeClaim" => "persistentvolumeclaims".to_owned(),
        other => format!("{}s", other.to_lowercase()),
    };
    let root = if api_version.contains('/') {
        "apis"
    } else {
        "api"
    };
    format!("/{root}/{api_version}/namespaces/{ns}/{plural}/{name}")
}
