"""Admin for training runs and model versions: pages render, start form validates, live status
endpoint, promote / roll back in one click, admin actions, compare view."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.urls import reverse

from recommender.models import ModelVersion, TrainingRun
from recommender.services import model_version_active, model_version_promote
from tests.recommender._training_fixtures import shop_create, tiny_engine  # noqa: F401

pytestmark = pytest.mark.django_db
Status = ModelVersion.Status


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pass-word-123")
    client.force_login(user)
    return client


def _version(engine="tinypop", metrics=None) -> ModelVersion:
    v = ModelVersion(
        engine=engine, metrics=metrics or {"ndcg@10": 0.1, "hr@10": 0.2}, data_snapshot={"events": 123}
    )
    v.artifact.save(f"{engine}.bin", ContentFile(b"x"), save=False)
    v.save()
    return v


def test_training_run_pages_render(admin_client):
    run = TrainingRun.objects.create(
        engine="pop",
        status=TrainingRun.Status.RUNNING,
        progress=40,
        progress_message="Training pop",
        timings={"data": 1.5},
        error="",
    )
    failed = TrainingRun.objects.create(
        engine="ease", status=TrainingRun.Status.FAILED, error="Boom <b>x</b>"
    )
    page = admin_client.get(reverse("admin:recommender_trainingrun_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-finished="0"' in html and "40% Training pop" in html and "Start a training run" in html
    detail = admin_client.get(reverse("admin:recommender_trainingrun_change", args=[run.pk]))
    assert detail.status_code == 200 and "rs-progress" in detail.content.decode()
    failed_page = admin_client.get(
        reverse("admin:recommender_trainingrun_change", args=[failed.pk])
    ).content.decode()
    assert "Boom &lt;b&gt;x&lt;/b&gt;" in failed_page  # escaped


def test_status_endpoint(admin_client, client):
    run = TrainingRun.objects.create(
        engine="pop", progress=55, progress_message="Evaluating", status=TrainingRun.Status.RUNNING
    )
    url = reverse("admin:recommender_trainingrun_status", args=[run.pk])
    data = admin_client.get(url).json()
    assert data["progress"] == 55 and data["message"] == "Evaluating" and data["finished"] is False
    assert admin_client.get(reverse("admin:recommender_trainingrun_status", args=[999])).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # login required


def test_start_form_renders_and_validates(admin_client, tiny_engine):
    url = reverse("admin:recommender_trainingrun_start")
    page = admin_client.get(url)
    assert page.status_code == 200 and "tinypop" in page.content.decode()
    assert admin_client.get(reverse("admin:recommender_trainingrun_add")).status_code == 200
    cases = [
        ({"engine": tiny_engine, "params": "{oops"}, "not valid JSON"),
        ({"engine": tiny_engine, "params": "[1, 2]"}, "must be a JSON object"),
        ({"engine": tiny_engine, "params": '{"colour": "red"}'}, "Unknown parameter(s) for tinypop: colour"),
        ({"engine": "nope", "params": "{}"}, "Select a valid choice"),
    ]
    for data, message in cases:
        response = admin_client.post(url, data)
        assert response.status_code == 200, data
        assert message in response.content.decode(), data
    assert TrainingRun.objects.count() == 0


def test_start_a_run_from_the_admin(admin_client, tiny_engine, django_capture_on_commit_callbacks):
    shop_create()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:recommender_trainingrun_start"),
            {"engine": tiny_engine, "params": '{"reverse": false}', "auto_promote": "on"},
        )
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response.url == reverse(
        "admin:recommender_trainingrun_change", args=[run.pk]
    )
    assert run.trigger == TrainingRun.Trigger.MANUAL and run.params == {"reverse": False}
    assert run.status == TrainingRun.Status.SUCCEEDED  # eager Celery in tests
    status = admin_client.get(reverse("admin:recommender_trainingrun_status", args=[run.pk])).json()
    assert status["finished"] and status["progress"] == 100 and status["model_version_url"]


def test_model_version_list_shows_metric_columns_and_buttons(admin_client):
    active = _version(metrics={"ndcg@10": 0.1234, "hr@10": 0.5})
    model_version_promote(version=active)
    _version(metrics={"ndcg@10": 0.2})
    html = admin_client.get(reverse("admin:recommender_modelversion_changelist")).content.decode()
    assert "NDCG@10" in html and "HR@10" in html and "COVERAGE@10" in html
    assert "0.1234" in html and "0.2000" in html and "123" in html
    assert "Roll back" in html and "Promote" in html and "csrfmiddlewaretoken" in html


def test_one_click_promote_and_rollback(admin_client):
    v1, v2 = _version(), _version()
    # promote v1 then v2 from the row buttons
    for v in (v1, v2):
        response = admin_client.post(reverse("admin:recommender_modelversion_promote", args=[v.pk]))
        assert response.status_code == 302
    assert model_version_active(engine="tinypop") == v2
    # roll back from the change page button
    page = admin_client.get(reverse("admin:recommender_modelversion_change", args=[v2.pk])).content.decode()
    assert "Roll back tinypop" in page and 'name="_save"' not in page
    response = admin_client.post(
        reverse("admin:recommender_modelversion_rollback", args=["tinypop"]), follow=True
    )
    assert f"Rolled back tinypop: v{v1.pk} serves again." in response.content.decode()
    assert model_version_active(engine="tinypop") == v1
    # nothing earlier: a clear message, not an error page
    response = admin_client.post(
        reverse("admin:recommender_modelversion_rollback", args=["tinypop"]), follow=True
    )
    assert response.status_code == 200 and "No earlier version of" in response.content.decode()
    # GET does not change anything
    assert (
        admin_client.get(reverse("admin:recommender_modelversion_promote", args=[v2.pk])).status_code == 405
    )
    assert admin_client.post(reverse("admin:recommender_modelversion_promote", args=[999])).status_code == 404


def test_promote_without_artifact_shows_message(admin_client):
    v = ModelVersion.objects.create(engine="tinypop")
    response = admin_client.post(reverse("admin:recommender_modelversion_promote", args=[v.pk]), follow=True)
    assert "has no artifact" in response.content.decode()
    assert model_version_active(engine="tinypop") is None


def test_admin_actions(admin_client):
    v1, v2, other = _version(), _version(), _version(engine="pop")
    url = reverse("admin:recommender_modelversion_changelist")
    # two versions of one engine: refused with a message
    response = admin_client.post(
        url, {"action": "promote_selected", "_selected_action": [v1.pk, v2.pk]}, follow=True
    )
    assert "at most one version per engine" in response.content.decode()
    assert model_version_active(engine="tinypop") is None
    admin_client.post(url, {"action": "promote_selected", "_selected_action": [v1.pk, other.pk]})
    assert model_version_active(engine="tinypop") == v1 and model_version_active(engine="pop") == other
    admin_client.post(url, {"action": "promote_selected", "_selected_action": [v2.pk]})
    admin_client.post(url, {"action": "rollback_selected", "_selected_action": [v2.pk]})
    assert model_version_active(engine="tinypop") == v1
    response = admin_client.post(url, {"action": "compare_selected", "_selected_action": [v1.pk, v2.pk]})
    assert response.status_code == 302 and "compare/?ids=" in response.url


def test_compare_view(admin_client):
    v1 = _version(metrics={"ndcg@10": 0.1, "hr@10": 0.3})
    v2 = _version(metrics={"ndcg@10": 0.2, "hr@10": 0.25})
    url = reverse("admin:recommender_modelversion_compare")
    html = admin_client.get(f"{url}?ids={v1.pk},{v2.pk}").content.decode()
    assert f"v{v1.pk}" in html and f"v{v2.pk}" in html
    assert "<strong>0.2000</strong>" in html and "<strong>0.3000</strong>" in html
    assert admin_client.get(f"{url}?ids=abc").status_code == 302  # bad ids: back to the list with a message


def test_version_change_page_shows_comparison(admin_client, tiny_engine, settings):
    settings.RECSITE_EVAL_TEST_FRACTION = 0.2
    shop_create()
    from recommender.training import training_run_create, training_run_execute

    for params in ({}, {"reverse": True}):
        training_run_execute(run_id=training_run_create(engine=tiny_engine, params=params, enqueue=False).pk)
    candidate = ModelVersion.objects.get(status=Status.CANDIDATE)
    html = admin_client.get(
        reverse("admin:recommender_modelversion_change", args=[candidate.pk])
    ).content.decode()
    assert "this version" in html and "kept as candidate" in html and "Promote this version" in html
