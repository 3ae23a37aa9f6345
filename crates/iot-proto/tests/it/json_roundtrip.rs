//! JSON round trips of every model structure: what is written reads back equal, and absent fields are
//! omitted rather than written as `null`.

use std::fmt::Debug;

use iot_model::strategies;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::support::{free_form_fields, nulls_outside_free_form, spec_names};

/// Serializes `value`, checks that no `null` appears outside free-form members, and reads it back both from
/// the text and from a `serde_json::Value`.
fn check_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let text = serde_json::to_string(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let tree: serde_json::Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let nulls = nulls_outside_free_form(&tree, &free_form_fields());
    prop_assert!(nulls.is_empty(), "null written at {nulls:?} in {text}");
    let back: T = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e} in {text}")))?;
    prop_assert_eq!(&back, value, "text: {}", text);
    let from_tree: T = serde_json::from_value(tree).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&from_tree, value);
    Ok(())
}

/// One property test per structure; `COVERED` lists the structures so that the spec can be checked against it.
macro_rules! round_trips {
    ($($strategy:ident => $ty:ident),* $(,)?) => {
        /// The structures with a round-trip property below.
        const COVERED: &[&str] = &[$(stringify!($ty)),*];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]
            $(
                #[test]
                fn $strategy(value in strategies::$strategy()) {
                    check_round_trip::<iot_model::$ty>(&value)?;
                }
            )*
        }
    };
}

round_trips! {
    auth_token => AuthToken,
    login_form => LoginForm,
    refresh_token_request => RefreshTokenRequest,
    logout_request => LogoutRequest,
    category_info => CategoryInfo,
    category_page => CategoryPage,
    operate_devices => OperateDevices,
    operate_policy => OperatePolicy,
    create_upgrade_task => CreateUpgradeTask,
    create_upgrade_task_response => CreateUpgradeTaskResponse,
    operation_sta_result => OperationStaResult,
    operation_info => OperationInfo,
    operation_page => OperationPage,
    sub_operation_info => SubOperationInfo,
    sub_operation_page => SubOperationPage,
    tag => Tag,
    command => Command,
    device_cmd_param => DeviceCmdParam,
    batch_task_request => BatchTaskRequest,
    create_batch_task_response => CreateBatchTaskResponse,
    batch_task_info => BatchTaskInfo,
    task_detail => TaskDetail,
    task_detail_page => TaskDetailPage,
    error_body => ErrorBody,
}

#[test]
fn every_spec_structure_has_a_round_trip_property() {
    let spec = spec_names("structs");
    let missing: Vec<&String> = spec.iter().filter(|s| !COVERED.contains(&s.as_str())).collect();
    assert!(missing.is_empty(), "structures without a round-trip property: {missing:?}");
    let stale: Vec<&&str> = COVERED.iter().filter(|c| !spec.iter().any(|s| s == *c)).collect();
    assert!(stale.is_empty(), "round-trip properties for structures not in the spec: {stale:?}");
}

#[test]
fn absent_fields_are_omitted_not_null() {
    // A value with every optional field absent must serialize to its required members only.
    let info = iot_model::OperationInfo::new(iot_model::OperationId::new("op-1").unwrap());
    assert_eq!(serde_json::to_string(&info).unwrap(), r#"{"operationId":"op-1"}"#);
    let page = iot_model::SubOperationPage::new();
    assert_eq!(serde_json::to_string(&page).unwrap(), r#"{"data":[]}"#);
    let policy = iot_model::OperatePolicy::new();
    assert_eq!(serde_json::to_string(&policy).unwrap(), "{}");
}

#[test]
fn the_null_detector_sees_nulls() {
    // The property above relies on this detector; make sure it does report a written null.
    let v = serde_json::json!({"a": null, "b": [1, null], "extendInfo": {"x": null}});
    assert_eq!(nulls_outside_free_form(&v, &free_form_fields()), ["a", "b[1]"]);
}
