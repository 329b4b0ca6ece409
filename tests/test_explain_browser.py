"""`hardwire explain` pages in a real browser (Chromium, driven by selenium): every program in programs/ renders
with no console errors, hover titles are on the figures, and the step controls change what is shown.

Marked `browser`: skipped, with the reason, where selenium, Chromium or chromedriver is missing (Debian:
`apt-get install -y chromium chromium-driver`; `pip install hardwire[browser]`). With HARDWIRE_SHOTS=DIR set,
the test also writes the screenshots docs/tutorial.md's teaching section shows into DIR.
"""
import os
import shutil
from pathlib import Path

import pytest

from hardwire.cli.main import main

pytestmark = pytest.mark.browser
PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
# small params and one input each, so the whole sweep stays cheap
CASES = {
    "add_cot": (["n=2"], "1 2 + 3 9 ="), "add_lsb": (["n=2"], "1 2 + 3 9"), "add_msb": (["n=2"], "1 2 + 3 9"),
    "caesar": ([], "a b c d"), "dyck1": ([], "( ( ) )"), "dyck2": ([], "( [ ] )"), "frac_prevs": ([], "x y x"),
    "histogram": ([], "a b a"), "length": ([], "a b c"), "pair_balance": ([], "( x )"),
    "parity_cc": (["n=4"], "1 0 1 1"), "parity_cot": (["n=3"], "1 0 1 ="), "parity_count": (["n=8"], "1 0 1 1"),
    "reverse": ([], "a b c"), "sort": ([], "3 1 2"), "sort_unique": ([], "5 2 7"),
    "subleq": (["mem=8", "bits=4"], "6 -1 3 7 7 -1 5 0"), "turing_cot": ([], "0 0"),
    "turing_loop": ([], " ".join("0" * 12)),
}


def chromium() -> tuple[str, str]:
    """(the browser, its driver), or skip saying what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed: pip install hardwire[browser]")
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("Chromium or chromedriver is not installed: apt-get install -y chromium chromium-driver")
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    binary, driver_path = chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(driver_path), options=opts)
    yield d
    d.quit()


def explained(tmp_path_factory, name: str, source: Path | None = None) -> Path:
    params, line = CASES[name]
    out = tmp_path_factory.mktemp(name) / "page"
    args = ["explain", str(source or PROGRAMS / f"{name}.hw"), "--input", line, "-o", str(out)]
    for p in params:
        args += ["--param", p]
    assert main(args) == 0
    return out / "index.html"


def errors(d) -> list[str]:
    return [e["message"] for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def visible_step(d, ident: str) -> tuple[str, str]:
    from selenium.webdriver.common.by import By
    box = d.find_element(By.ID, ident)
    on = [s for s in box.find_elements(By.CSS_SELECTOR, ".step") if s.is_displayed()]
    assert len(on) == 1
    return box.find_element(By.CSS_SELECTOR, ".at").text, on[0].get_attribute("data-label")


def test_program_list_is_complete():
    assert sorted(CASES) == sorted(p.stem for p in PROGRAMS.glob("*.hw"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_program_renders_without_console_errors(name, browser, tmp_path_factory):
    from selenium.webdriver.common.by import By
    page = explained(tmp_path_factory, name)
    browser.get_log("browser")  # drop what an earlier page logged
    browser.get(page.as_uri())
    assert browser.title.startswith("hardwire explain")
    assert errors(browser) == []
    assert browser.find_elements(By.CSS_SELECTOR, "svg.diagram")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.heat rect title")      # hover titles on every cell
    width = browser.execute_script("return document.body.scrollWidth")
    assert width <= browser.execute_script("return window.innerWidth") + 1    # nothing wider than the page


def step_through(d, ident: str) -> list[str]:
    """Click `next` until the end: the frame labels seen, checking each click changed the frame shown."""
    from selenium.webdriver.common.by import By
    box = d.find_element(By.ID, ident)
    n = len(box.find_elements(By.CSS_SELECTOR, ".step"))
    seen = [visible_step(d, ident)]
    assert seen[0][0] == seen[0][1]
    for _ in range(n - 1):
        box.find_element(By.CSS_SELECTOR, ".next").click()
        seen.append(visible_step(d, ident))
        assert seen[-1] != seen[-2] and seen[-1][0] == seen[-1][1]
    box.find_element(By.CSS_SELECTOR, ".prev").click()
    assert visible_step(d, ident) == seen[-2] if n > 1 else seen[0]
    return [label for label, _ in seen]


def test_loop_step_control(browser, tmp_path_factory):
    browser.get(explained(tmp_path_factory, "subleq").as_uri())
    assert step_through(browser, "loop-steps") == ["pass 1", "pass 2", "pass 3"]
    assert errors(browser) == []


def test_generation_step_control(browser, tmp_path_factory):
    browser.get(explained(tmp_path_factory, "parity_cot").as_uri())
    assert step_through(browser, "gen-steps") == ["token 1: 1", "token 2: 1", "token 3: 0"]
    assert errors(browser) == []


def test_weight_file_page_renders(browser, tmp_path_factory):
    folder = tmp_path_factory.mktemp("w")
    model = folder / "subleq.safetensors"
    assert main(["compile", str(PROGRAMS / "subleq.hw"), "--param", "mem=8", "--param", "bits=4",
                 "-o", str(model)]) == 0
    out = folder / "page"
    assert main(["explain", str(model), "--input", CASES["subleq"][1], "-o", str(out)]) == 0
    browser.get((out / "index.html").as_uri())
    assert errors(browser) == []
    assert step_through(browser, "loop-steps") == ["pass 1", "pass 2", "pass 3"]


def test_screenshots_for_the_tutorial(browser, tmp_path_factory):
    """The figures docs/tutorial.md walks through: each a screenshot of one element of a real page."""
    from selenium.webdriver.common.by import By
    folder = Path(os.environ.get("HARDWIRE_SHOTS") or tmp_path_factory.mktemp("shots"))
    browser.get(explained(tmp_path_factory, "parity_count").as_uri())
    shots = {"explain_circuit.png": "svg.diagram"}
    for name, css in shots.items():
        element = browser.find_element(By.CSS_SELECTOR, css)
        browser.execute_script("arguments[0].scrollIntoView()", element)
        element.screenshot(str(folder / name))
    head = browser.find_element(By.ID, "head-1-1")
    browser.execute_script("arguments[0].scrollIntoView()", head)
    figures = browser.find_elements(By.CSS_SELECTOR, "#head-1-1 ~ figure")[:4]
    for k, fig in enumerate(figures):
        fig.screenshot(str(folder / f"explain_head_{k + 1}.png"))
    side = browser.find_element(By.CSS_SELECTOR, '[id="mlp-2-1"] ~ .side')
    browser.execute_script("arguments[0].scrollIntoView()", side)
    side.screenshot(str(folder / "explain_mlp.png"))
    browser.get(explained(tmp_path_factory, "subleq").as_uri())
    box = browser.find_element(By.ID, "loop-steps")
    browser.execute_script("arguments[0].scrollIntoView()", box)
    box.find_element(By.CSS_SELECTOR, ".next").click()
    assert visible_step(browser, "loop-steps")[1] == "pass 2"
    box.screenshot(str(folder / "explain_steps.png"))
    made = sorted(p.name for p in folder.glob("explain_*.png"))
    assert "explain_circuit.png" in made and "explain_steps.png" in made and "explain_mlp.png" in made
    for p in folder.glob("explain_*.png"):
        assert p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size < 200_000, p
