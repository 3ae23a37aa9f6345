//! Typed batch-task parameters: builds the JSON object `param` of a batch task from a [`DeviceCmdParam`].
//!
//! The wire field `param` is a JSON object whose shape depends on the task type, so the generated
//! [`BatchTaskRequest`] keeps it as one. These conversions let a caller hand over the typed value instead of
//! going through `serde_json` by hand.

use serde::Serialize;

use crate::{AppId, BatchTaskRequest, BatchTaskType, DeviceCmdParam, Json, JsonMap};

impl From<DeviceCmdParam> for JsonMap<String, Json> {
    /// Converts the parameter into the JSON object a DeviceCmd batch task carries.
    fn from(param: DeviceCmdParam) -> Self {
        to_object(&param)
    }
}

impl From<&DeviceCmdParam> for JsonMap<String, Json> {
    /// Converts the parameter into the JSON object a DeviceCmd batch task carries.
    fn from(param: &DeviceCmdParam) -> Self {
        to_object(param)
    }
}

impl BatchTaskRequest {
    /// Builds the body of a DeviceCmd batch task: one command delivered to the devices `param` selects.
    ///
    /// `timeout` is in minutes (10..=2880); tags start empty.
    ///
    /// ```
    /// use iot_model::{AppId, BatchTaskRequest, BatchTaskType, Command, DeviceCmdParam, DeviceCmdType, DeviceId};
    ///
    /// let param = DeviceCmdParam::new(DeviceCmdType::DeviceList, Command::new("Switch".into(), "SET".into()))
    ///     .with_device_list(vec![DeviceId::new("dev-1")?]);
    /// let task = BatchTaskRequest::device_cmd(AppId::new("my-app")?, 30, "lights on", param);
    /// assert_eq!(task.task_type, BatchTaskType::DeviceCmd);
    /// assert_eq!(task.param["type"], "DeviceList");
    /// # Ok::<(), iot_model::ModelError>(())
    /// ```
    pub fn device_cmd(app_id: AppId, timeout: u32, task_name: impl Into<String>, param: DeviceCmdParam) -> Self {
        Self::new(app_id, timeout, task_name.into(), BatchTaskType::DeviceCmd, param.into())
    }

    /// Reads `param` back as a [`DeviceCmdParam`]; fails when it does not have that shape (for example a
    /// task of another type).
    pub fn device_cmd_param(&self) -> Result<DeviceCmdParam, serde_json::Error> {
        serde_json::from_value(Json::Object(self.param.clone()))
    }
}

/// Serializes a typed parameter into a JSON object.
fn to_object<T: Serialize>(value: &T) -> JsonMap<String, Json> {
    match serde_json::to_value(value) {
        Ok(Json::Object(map)) => map,
        // The derived `Serialize` of a struct whose maps have string keys always gives an object, so this
        // cannot happen; were it ever to, the empty `param` is refused by validation before a request exists.
        _ => JsonMap::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::{Command, DeviceCmdType, DeviceId};

    fn param() -> DeviceCmdParam {
        let paras = serde_json::json!({"state": "on", "level": 3}).as_object().unwrap().clone();
        DeviceCmdParam::new(DeviceCmdType::DeviceList, Command::new("Switch".into(), "SET".into()).with_paras(paras))
            .with_device_list(vec![DeviceId::new("dev-1").unwrap(), DeviceId::new("dev-2").unwrap()])
            .with_max_retransmit(2)
    }

    #[test]
    fn the_typed_param_becomes_the_same_object_as_through_serde_json() {
        let by_hand = serde_json::to_value(param()).unwrap().as_object().unwrap().clone();
        assert_eq!(JsonMap::from(param()), by_hand);
        assert_eq!(JsonMap::from(&param()), by_hand);
        assert_eq!(by_hand["type"], "DeviceList");
        assert_eq!(by_hand["deviceList"], serde_json::json!(["dev-1", "dev-2"]));
        assert_eq!(by_hand["command"]["paras"]["level"], 3);
        // Absent optional fields are left out, never written as null.
        assert!(!by_hand.contains_key("callbackUrl"));
    }

    #[test]
    fn device_cmd_builds_a_device_cmd_task_and_reads_its_param_back() {
        let app = AppId::new("app-1").unwrap();
        let task = BatchTaskRequest::device_cmd(app.clone(), 60, "lights", param());
        let by_hand = BatchTaskRequest::new(
            app,
            60,
            "lights".to_owned(),
            BatchTaskType::DeviceCmd,
            serde_json::to_value(param()).unwrap().as_object().unwrap().clone(),
        );
        assert_eq!(task, by_hand);
        assert_eq!(task.tags, None);
        assert_eq!(task.device_cmd_param().unwrap(), param());

        let mut other = task;
        other.param = JsonMap::new();
        assert!(other.device_cmd_param().is_err());
    }
}
