//! The SDK's boundary behaviour, through the real root module that `export_plugin!` exports:
//! dispatch, panics, cancellation, unknown operations, log forwarding and emitted records.
//! One plugin type per test binary, as in a real library (the SDK keeps one instance).

use std::{thread, time::Duration};

use invhost_plugin_api::{
    API_VERSION, Error, ErrorKind, Host, Manifest, Plugin, Record, SourceType,
    abi::{HostBox, PluginModV1_Ref},
    abi_stable::std_types::RStr,
    model::{Application, MODEL_VERSION},
    protocol::{
        ConnectionInfo, ImportRequest, ImportSummary, InitRequest, TestReport, TestRequest,
        ValidateRequest, ValidateResponse, op,
    },
    sdk::{__private::root_module, testing::RecordingHost},
};
use serde_json::json;

struct Probe;

impl Plugin for Probe {
    fn new(_init: &InitRequest) -> Result<Self, Error> {
        Ok(Probe)
    }

    fn manifest(&self) -> Manifest {
        Manifest {
            plugin_id: "probe".into(),
            plugin_version: "0.1.0".into(),
            api_version: API_VERSION.into(),
            source_types: vec![SourceType {
                id: "probe".into(),
                title: "Probe".into(),
                description: "Test plugin.".into(),
                actions: vec![],
                supersedes: vec![],
            }],
        }
    }

    fn settings_schema(&self, _source_type: &str) -> Result<schemars::Schema, Error> {
        Ok(schemars::json_schema!({"type": "object"}))
    }

    fn validate(&self, request: ValidateRequest) -> Result<ValidateResponse, Error> {
        tracing::warn!(field = "mode", "Validating in probe mode.");
        match request.settings["mode"].as_str() {
            Some("panic") => panic!("probe panic in validate"),
            _ => Ok(ValidateResponse::default()),
        }
    }

    async fn test_connection(
        &self,
        request: TestRequest,
        host: &Host,
    ) -> Result<TestReport, Error> {
        if request.settings["mode"] == "panic" {
            tokio::task::yield_now().await;
            panic!("probe panic after an await");
        }
        // Works until cancelled, checking between steps as plugins should. In "finish" mode it
        // completes its step after the cancellation, as a token exchange in flight would.
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if host.is_cancelled() {
                return if request.settings["mode"] == "finish" {
                    Ok(TestReport {
                        summary: "finished the step in flight".into(),
                        ..TestReport::default()
                    })
                } else {
                    Err(Error::cancelled())
                };
            }
        }
    }

    async fn import(&self, _request: ImportRequest, host: &Host) -> Result<ImportSummary, Error> {
        host.emit(&[Record::Application(Application {
            id: "app".into(),
            name: "App".into(),
            vendor: None,
            attributes: Default::default(),
        })])?;
        Ok(ImportSummary::default())
    }
}

invhost_plugin_api::export_plugin!(Probe);

fn module() -> PluginModV1_Ref {
    static MODULE: std::sync::OnceLock<PluginModV1_Ref> = std::sync::OnceLock::new();
    *MODULE.get_or_init(|| {
        let module = root_module::<Probe>();
        let init =
            json!({"host_version": "test", "api_version": API_VERSION, "log_level": "debug"});
        let manifest = (module.init())(
            RStr::from_str(&init.to_string()),
            RecordingHost::new().host_box(),
        )
        .into_result()
        .expect("init succeeds");
        assert!(manifest.as_str().contains("\"plugin_id\":\"probe\""));
        module
    })
}

trait HostBoxExt {
    fn host_box(&self) -> HostBox;
}

impl HostBoxExt for RecordingHost {
    fn host_box(&self) -> HostBox {
        invhost_plugin_api::abi::HostCallbacks_TO::from_value(
            self.clone(),
            invhost_plugin_api::abi_stable::sabi_trait::TD_Opaque,
        )
    }
}

fn invoke(
    op: &str,
    request: serde_json::Value,
    host: &RecordingHost,
) -> Result<serde_json::Value, Error> {
    let answer = (module().invoke())(
        RStr::from_str(op),
        RStr::from_str(&request.to_string()),
        host.host_box(),
    );
    answer
        .into_result()
        .map(|json| serde_json::from_str(json.as_str()).expect("answer is JSON"))
        .map_err(Error::from)
}

fn request(settings: serde_json::Value) -> serde_json::Value {
    json!({"source_type": "probe", "connection": {"name": "c"}, "settings": settings})
}

#[test]
fn operations_dispatch_and_answer_json() {
    let host = RecordingHost::new();
    let schema =
        invoke(op::SETTINGS_SCHEMA, json!({"source_type": "probe"}), &host).expect("schema");
    assert_eq!(schema, json!({"type": "object"}));
    let import = ImportRequest {
        source_type: "probe".into(),
        connection: ConnectionInfo { name: "c".into() },
        settings: json!({}),
        model_version: MODEL_VERSION,
    };
    invoke(
        op::IMPORT,
        serde_json::to_value(import).expect("json"),
        &host,
    )
    .expect("import");
    assert_eq!(host.recorded().records.len(), 1);
}

#[test]
fn a_panic_in_a_sync_operation_becomes_an_error_and_is_logged_to_the_call_host() {
    let host = RecordingHost::new();
    let error = invoke(
        op::VALIDATE_SETTINGS,
        request(json!({"mode": "panic"})),
        &host,
    )
    .expect_err("panic becomes an error");
    assert_eq!(error.kind, ErrorKind::PANIC);
    assert!(
        error.message.contains("probe panic in validate"),
        "{}",
        error.message
    );
    let logs = host.recorded().logs;
    assert!(
        logs.iter()
            .any(|(_, m)| m.contains("Plugin panicked") && m.contains("probe panic in validate")),
        "{logs:?}"
    );
    // The plugin still works afterwards.
    invoke(op::VALIDATE_SETTINGS, request(json!({})), &host).expect("still alive");
}

#[test]
fn a_panic_after_an_await_becomes_an_error() {
    let host = RecordingHost::new();
    let error = invoke(
        op::TEST_CONNECTION,
        request(json!({"mode": "panic"})),
        &host,
    )
    .expect_err("panic becomes an error");
    assert_eq!(error.kind, ErrorKind::PANIC);
    assert!(
        error.message.contains("probe panic after an await"),
        "{}",
        error.message
    );
}

#[test]
fn cancelling_stops_a_running_call() {
    let host = RecordingHost::new();
    let canceller = host.clone();
    let cancel = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        canceller.cancel();
    });
    let error = invoke(op::TEST_CONNECTION, request(json!({})), &host).expect_err("cancelled");
    cancel.join().expect("canceller");
    assert_eq!(error.kind, ErrorKind::CANCELLED);
}

#[test]
fn a_cancelled_call_may_finish_the_step_in_flight() {
    let host = RecordingHost::new();
    let canceller = host.clone();
    let cancel = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        canceller.cancel();
    });
    let answer = invoke(
        op::TEST_CONNECTION,
        request(json!({"mode": "finish"})),
        &host,
    )
    .expect("finished");
    cancel.join().expect("canceller");
    assert_eq!(answer["summary"], "finished the step in flight");
}

#[test]
fn unknown_operations_answer_unsupported() {
    let error =
        invoke("discover_the_future", json!({}), &RecordingHost::new()).expect_err("unknown op");
    assert_eq!(error.kind, ErrorKind::UNSUPPORTED);
    assert!(error.message.contains("discover_the_future"));
}

#[test]
fn a_plugin_without_a_demo_answers_unsupported() {
    let host = RecordingHost::new();
    for (op, request) in [
        (op::START_DEMO, json!({"source_type": "probe", "users": 10})),
        (op::STOP_DEMO, json!({"id": "x"})),
    ] {
        let error = invoke(op, request, &host).expect_err("no demo");
        assert_eq!(error.kind, ErrorKind::UNSUPPORTED, "{op}: {error:?}");
    }
}

#[test]
fn unreadable_requests_are_errors_not_panics() {
    let answer = (module().invoke())(
        RStr::from_str(op::VALIDATE_SETTINGS),
        RStr::from_str("{not json"),
        RecordingHost::new().host_box(),
    );
    let error = Error::from(answer.into_result().expect_err("bad JSON"));
    assert_eq!(error.kind, ErrorKind::INTERNAL);
}

#[test]
fn tracing_events_reach_the_call_host_with_their_fields() {
    let host = RecordingHost::new();
    invoke(op::VALIDATE_SETTINGS, request(json!({})), &host).expect("valid");
    let logs = host.recorded().logs;
    assert!(
        logs.iter().any(
            |(level, m)| *level == invhost_plugin_api::abi::LogLevel::WARN
                && m == "Validating in probe mode."
        ),
        "{logs:?}"
    );
}
