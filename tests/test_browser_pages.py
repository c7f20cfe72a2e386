"""The shared pages in a real browser, inside an LMS-like iframe from another origin."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

#: A stand-in for the LMS page that frames Preceptor (the course page in Canvas or Moodle).
LMS_PAGE = """<!doctype html><html lang="en"><head><title>Course</title></head><body>
<h1>Clinical Skills I</h1>
<iframe src="{src}" title="Preceptor" style="width:{width}px;height:600px;border:0"></iframe>
</body></html>"""


def _relative_luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two CSS rgb()/rgba() colours as the browser computed them."""

    def parse(css: str) -> tuple[int, int, int]:
        numbers = css[css.index("(") + 1 : css.index(")")].split(",")
        r, g, b = (int(float(n)) for n in numbers[:3])
        return r, g, b

    lighter, darker = sorted(
        (_relative_luminance(parse(foreground)), _relative_luminance(parse(background))),
        reverse=True,
    )
    return (lighter + 0.05) / (darker + 0.05)


@pytest.fixture
def lms_page(live_server: LiveServer) -> Any:
    """Serve an LMS-like page on another origin (localhost vs 127.0.0.1) framing a path."""

    def host(path: str, width: int = 360) -> str:
        rule = f"/__lms_{abs(hash((path, width)))}"
        html = LMS_PAGE.format(src=live_server.url(path), width=width)
        # The stand-in LMS is served by our app; give it an LMS's policy, not ours.
        headers = {"Content-Security-Policy": "frame-src *"}
        live_server.app.add_url_rule(rule, rule, lambda: (html, 200, headers))
        return live_server.url(rule, host="localhost")

    return host


def test_error_page_renders_inside_a_narrow_lms_frame(browser: Any, lms_page: Any) -> None:
    page = browser.new_page()
    page.goto(lms_page("/this/does/not/exist", width=360))
    frame = page.frame_locator("iframe[title=Preceptor]")
    heading = frame.get_by_role("heading", level=1)
    expect(heading).to_have_text("Page not found")
    expect(frame.get_by_text("open Preceptor again")).to_be_visible()
    # It fits: nothing wider than the 360 px frame, so no sideways scrolling in a phone LMS.
    inner = page.frames[1]
    assert inner.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.close()


def test_keyboard_users_can_skip_to_the_content(browser: Any, live_server: LiveServer) -> None:
    page = browser.new_page()
    page.goto(live_server.url("/"))
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Skip to content"
    assert page.evaluate("getComputedStyle(document.activeElement).left") != "-999px"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.close()


@pytest.mark.parametrize("path", ["/", "/missing"])
def test_text_and_links_meet_wcag_aa_contrast(
    browser: Any, live_server: LiveServer, path: str
) -> None:
    page = browser.new_page()
    page.goto(live_server.url(path))
    pairs = page.evaluate(
        """() => Array.from(document.querySelectorAll('main p, main a, main h1, main code'))
            .map(el => {
              let bg = 'rgba(0, 0, 0, 0)', node = el;
              while (node && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {
                bg = getComputedStyle(node).backgroundColor; node = node.parentElement;
              }
              return [el.tagName, getComputedStyle(el).color, bg || 'rgb(255, 255, 255)'];
            })"""
    )
    assert pairs
    for tag, foreground, background in pairs:
        assert contrast(foreground, background) >= 4.5, (tag, foreground, background)
    page.close()


def test_axe_finds_no_serious_violation_on_the_error_page_and_does_find_a_planted_one(
    browser: Any, live_server: LiveServer
) -> None:
    from tests.conftest import accessibility_violations

    page = browser.new_page()
    page.goto(live_server.url("/no-such-page"))
    assert accessibility_violations(page) == []
    # The check can fail: an unlabeled input is a serious violation axe must report.
    page.evaluate("document.querySelector('main').append(document.createElement('input'))")
    assert any(v.startswith("label") for v in accessibility_violations(page))
    page.close()
