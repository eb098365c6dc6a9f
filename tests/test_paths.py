"""The files of a run folder, and the one resolver of a model (paths.locate): each kind of name, each fallback,
the messages, and every command and API call going through it."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepclust import cli, paths


@pytest.fixture
def models(tmp_path, monkeypatch):
    """A run folder, a .keras file, a shipped model of its own, and no $DEEPC_BASE."""
    run, shipped = tmp_path / "run", tmp_path / "shipped"
    for folder in (run, shipped):
        folder.mkdir()
        (folder / paths.MODEL_FILENAME).write_bytes(b"weights")
    (tmp_path / "other.keras").write_bytes(b"weights")
    monkeypatch.setattr(paths, "SHIPPED_DIR", shipped)
    monkeypatch.delenv(paths.ENV_BASE, raising=False)
    return tmp_path


def test_the_files_of_a_run_folder(tmp_path):
    assert paths.saved_config(tmp_path / "run" / "model.keras") == tmp_path / "run" / paths.CONFIG_FILENAME
    assert paths.shipped_model() == paths.SHIPPED_DIR / paths.MODEL_FILENAME
    assert paths.SHIPPED_DIR == Path(paths.__file__).parent / "pretrained_model"


def test_each_kind_of_name(models):
    assert paths.locate("pretrained") == models / "shipped" / paths.MODEL_FILENAME
    assert paths.locate(models / "run") == paths.locate(str(models / "run")) == models / "run" / paths.MODEL_FILENAME
    assert paths.locate(models / "other.keras") == models / "other.keras"
    assert paths.locate(base=models / "run") == models / "run" / paths.MODEL_FILENAME
    assert paths.locate(base=models / "other.keras") == models / "other.keras"


def test_model_then_base_then_the_environment_then_the_shipped_model(models, monkeypatch):
    said = []
    assert paths.locate(models / "other.keras", models / "run", fallback=said.append) == models / "other.keras"
    monkeypatch.setenv(paths.ENV_BASE, str(models / "run"))
    assert paths.locate(base=models / "other.keras", fallback=said.append) == models / "other.keras"
    assert paths.locate(fallback=said.append) == models / "run" / paths.MODEL_FILENAME
    assert not said  # a named model is used without a word
    monkeypatch.setenv(paths.ENV_BASE, "")  # set but empty: not a name
    assert paths.locate(fallback=said.append) == models / "shipped" / paths.MODEL_FILENAME
    assert said == [paths.shipped_notice(models / "shipped" / paths.MODEL_FILENAME)]
    assert said[0].startswith("no --base, --model or $DEEPC_BASE given: using the pretrained model shipped")
    assert paths.CARD_FILENAME in said[0]


def test_nothing_named_without_a_fallback_or_a_shipped_model(models, monkeypatch):
    with pytest.raises(paths.ModelNotGiven, match=r"^no model given: pass --base DIR.*--model FILE.*DEEPC_BASE"):
        paths.locate()
    monkeypatch.setattr(paths, "SHIPPED_DIR", models / "none")
    with pytest.raises(paths.ModelNotGiven, match=r"--base DIR.*carries no pretrained model: .*none.model\.keras"):
        paths.locate(fallback=print)


def test_a_named_model_that_is_not_there_says_what_was_looked_for(models, monkeypatch):
    empty = models / "empty"
    empty.mkdir()
    with pytest.raises(paths.ModelNotFound, match=r"no model at .*empty.model\.keras; expected 'pretrained' .*"
                                                  r"training folder .*\.keras file.*Received: model='.*empty'"):
        paths.locate(empty)
    with pytest.raises(paths.ModelNotFound, match=r"no model at .*gone\.keras;.*Received: init='.*gone\.keras'"):
        paths.locate(models / "gone.keras", argument="init")
    with pytest.raises(paths.ModelNotFound, match=r"no model at .*nowhere.model\.keras;.*Received: base="):
        paths.locate(None, models / "nowhere", fallback=print)  # a name that is wrong is not a fallback
    monkeypatch.setenv(paths.ENV_BASE, str(models / "nowhere"))
    with pytest.raises(paths.ModelNotFound, match=r"Received: \$DEEPC_BASE='.*nowhere'"):
        paths.locate(fallback=print)
    errors = cli.user_errors()  # a command says either in one line, not a traceback
    assert issubclass(paths.ModelNotFound, errors) and issubclass(paths.ModelNotGiven, errors)


def test_pretrained_is_the_shipped_model_only_as_a_model_name(models, monkeypatch):
    """A run folder called 'pretrained' named by --base or $DEEPC_BASE is that folder."""
    monkeypatch.chdir(models)
    (models / "pretrained").mkdir()
    (models / "pretrained" / paths.MODEL_FILENAME).write_bytes(b"weights")
    assert paths.locate(base="pretrained") == Path("pretrained") / paths.MODEL_FILENAME
    monkeypatch.setenv(paths.ENV_BASE, "pretrained")
    assert paths.locate() == Path("pretrained") / paths.MODEL_FILENAME
    assert paths.locate("pretrained") == models / "shipped" / paths.MODEL_FILENAME


# -- every command and API call goes through paths.locate ------------------------------------------


class Located(Exception):
    """Raised by the stand-in resolver: the call got as far as finding its model."""


@pytest.fixture
def calls(monkeypatch):
    made = []

    def locate(model=None, base=None, *, fallback=None, argument="model"):
        made.append({"model": None if model is None else str(model), "base": None if base is None else str(base),
                     "fallback": fallback is not None, "argument": argument})
        raise Located

    monkeypatch.setattr(paths, "locate", locate)
    monkeypatch.delenv(paths.ENV_BASE, raising=False)
    return made


@pytest.mark.parametrize("argv, expected", [
    (["separate", "m.wav"], {"model": None, "base": None}),
    (["separate", "m.wav", "--model", "x.keras", "--base", "run"], {"model": "x.keras", "base": "run"}),
    (["evaluate", "test", "--base", "run"], {"model": None, "base": "run"}),
    (["visualize", "m.wav", "--model", "pretrained"], {"model": "pretrained", "base": None}),
    (["export", "--out", "out"], {"model": None, "base": None}),
])
def test_each_command_falls_back_through_the_resolver(calls, argv, expected):
    with pytest.raises(Located):
        cli.main(argv)
    assert calls == [{**expected, "fallback": True, "argument": "model"}]


def test_train_init_goes_through_the_resolver(calls, list_folder):
    with pytest.raises(Located):
        cli.main(["train", "--base", str(list_folder), "--config", "tiny", "--init", "somewhere"])
    assert calls == [{"model": "somewhere", "base": None, "fallback": False, "argument": "init"}]


def test_the_api_goes_through_the_resolver(calls, mixture_list, tmp_path):
    from deepclust.evaluation.evaluate import evaluate
    from deepclust.evaluation.visualize import plot_separation
    from deepclust.nn import pretrained
    from deepclust.separation.files import separate_files
    from deepclust.separation.separator import Separator
    from deepclust.training.train import load_trained

    for call in (lambda: Separator.load(), lambda: Separator.from_path("run"), lambda: load_trained("run"),
                 lambda: separate_files([tmp_path / "m.wav"], "run"), lambda: pretrained.export("run", tmp_path),
                 lambda: evaluate(mixture_list, base="run", progress=False),
                 lambda: plot_separation(tmp_path / "m.wav", model="run")):
        with pytest.raises(Located):
            call()
    assert [(c["model"], c["base"], c["fallback"]) for c in calls] == [
        ("pretrained", None, False), ("run", None, False), ("run", None, False), ("run", None, False),
        ("run", None, False), (None, "run", True), ("run", None, True)]
