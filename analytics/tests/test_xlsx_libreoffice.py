"""An XLSX export opened by a real spreadsheet program (LibreOffice Calc, headless) shows exactly the
text of formula-like cells: nothing is evaluated and no apostrophe is added."""

import csv
import io
import shutil
import subprocess

import pytest

from analytics import services
from analytics.tests.factories import ExportJobFactory
from tasks_app.tests.factories import TaskFactory
from tests.support import debian

pytestmark = pytest.mark.django_db

# UTF-8 (76), comma-separated (44), double-quoted (34), first line 1; formulas shown as results.
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1"


def _soffice():
    """LibreOffice's soffice, installing Debian's libreoffice-calc-nogui if it is missing and we may."""
    if shutil.which("libreoffice") and not shutil.which("soffice"):
        return shutil.which("libreoffice"), None
    return debian.ensure("libreoffice-calc-nogui", binary="soffice")


def test_libreoffice_shows_formula_like_text_exactly(cast, media, tmp_path):
    soffice, problem = _soffice()
    if problem:
        pytest.skip(problem)
    titles = ["=1+1", '=HYPERLINK("http://example.invalid";"x")', "+SUM(1;2)", "-2+3", "@cmd", "plain"]
    for title in titles:
        TaskFactory(project=cast.project, title=title)
    job = ExportJobFactory(requester=cast.member, format="xlsx", fields=["title"])
    assert services.export_run(job_id=job.pk)["status"] == "succeeded"
    job.refresh_from_db()
    xlsx = tmp_path / "export.xlsx"
    with job.file.open("rb") as fh:
        xlsx.write_bytes(fh.read())

    result = subprocess.run(
        [
            soffice,
            "--headless",
            "--norestore",
            f"-env:UserInstallation=file://{tmp_path}/lo-profile",
            "--convert-to",
            CSV_FILTER,
            "--outdir",
            str(tmp_path / "out"),
            str(xlsx),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    converted = tmp_path / "out" / "export.csv"
    assert converted.exists(), (result.returncode, result.stdout, result.stderr)
    rows = list(csv.reader(io.StringIO(converted.read_text(encoding="utf-8"))))
    assert rows[0] == ["title"]
    # Exactly the text: "=1+1" is not 2, "-2+3" is not 1, and no leading apostrophe.
    assert sorted(r[0] for r in rows[1:]) == sorted(titles)
