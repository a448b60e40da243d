"""Reports, drafts, charts and rejects are never written through a link, never half-written, and a bad
output path is one line naming it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from db.files import OutputPathError, atomic_writer, write_text


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    return victim


def test_a_link_at_the_target_is_refused_and_its_file_kept(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").symlink_to(victim)
    with pytest.raises(OutputPathError, match="symbolic link"):
        write_text(out / "report.md", "overwritten")
    assert victim.read_text() == "keep me\n"


def test_a_link_planted_at_the_old_temporary_name_redirects_nothing(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    (tmp_path / ".draft.md.tmp").symlink_to(victim)  # the fixed name earlier versions wrote through
    write_text(tmp_path / "draft.md", "the draft")
    assert victim.read_text() == "keep me\n"
    assert (tmp_path / "draft.md").read_text() == "the draft"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".draft.md.") and p.suffix == ".tmp"][1:]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "draft.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["draft.json"]


def test_report_and_draft_refuse_links_and_name_a_bad_out_path(
    demo_shop_copy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_shop_copy.url)
    runner = CliRunner()
    victim = _victim(tmp_path)

    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").symlink_to(victim)
    period = ["--start", "2026-06-01", "--end", "2026-06-30"]
    result = runner.invoke(app, ["report", "--out", str(out), "--format", "md", *period])
    assert result.exit_code == 1 and "symbolic link" in result.output, result.output
    assert victim.read_text() == "keep me\n"
    assert "Traceback" not in result.output

    drafts = tmp_path / "drafts"
    (drafts / "2026-07-01").mkdir(parents=True)
    (drafts / "2026-07-01" / "plan.png").symlink_to(victim)
    result = runner.invoke(app, ["draft", "--date", "2026-07-01", "--out", str(drafts), "--no-model"])
    assert result.exit_code == 1 and "symbolic link" in result.output, result.output
    assert victim.read_text() == "keep me\n"

    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    for args in (
        ["report", "--out", str(a_file), *period],
        ["draft", "--date", "2026-07-01", "--out", str(a_file), "--no-model"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "is a file, not a folder" in result.output and str(a_file) in " ".join(result.output.split())
        assert "Traceback" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder: permissions cannot refuse it")
def test_a_folder_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match="cannot write"):
            write_text(locked / "report.md", "x")
    finally:
        locked.chmod(0o700)


def test_rejected_rows_are_not_written_through_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = _victim(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    path = tmp_path / "products.csv"
    path.write_text("sku,title,category,list_price\nA-1,One,toys,9.99\nA-2,Two,toys,abc\n")
    rejects = tmp_path / "rejects.csv"
    rejects.symlink_to(victim)
    result = CliRunner().invoke(
        app, ["import", "catalog", str(path), "--skip-bad-rows", "--rejects", str(rejects)]
    )
    assert result.exit_code == 1 and "symbolic link" in result.output, result.output
    assert victim.read_text() == "keep me\n"
