//! The OpenAPI document, generated from the handlers' annotations.

use crate::{error, events, tasks};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Worklane", description = "Workload distribution server: tasks, actions and their events."),
    paths(
        tasks::create_task, tasks::get_task, tasks::list_tasks, tasks::update_task,
        tasks::task_action, tasks::assign_task, tasks::task_events,
        events::list_events, events::stream_events,
    ),
    components(schemas(
        error::ErrorBody, tasks::CreateTaskBody, tasks::UpdateTaskBody, tasks::ActionBody,
        tasks::AssignBody, tasks::TaskPage, events::EventPage,
        worklane_domain::Task, worklane_domain::Event, worklane_domain::TaskFields,
    )),
    tags((name = "tasks"), (name = "events"))
)]
struct ApiDoc;

/// The OpenAPI document as a value (also used by `worklane openapi`).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(document())
}
