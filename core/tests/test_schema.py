from django.core.management import call_command


def test_schema_generates_without_warnings(db, tmp_path):
    # --fail-on-warn raises SchemaGenerationError on any warning or error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/v1/tasks/" in (tmp_path / "schema.yml").read_text()


def test_docs_and_schema_served(client, db):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
