"""A new member registers and logs in, in Chinese and English, on a phone and a desktop."""

from __future__ import annotations

from tests.browser.conftest import axe_violations, log_in, shot, unique_email
from tests.conftest import PASSWORD


def test_register_log_out_and_in(page, live_server):
    email = unique_email("register")
    page.goto(f"{live_server.url}/auth/register")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert axe_violations(page) == []
    page.fill("input[name=email]", email)
    page.fill("input[name=display_name]", "陈佳怡 🌸")
    assert page.input_value("select[name=organisation]") == "0"  # "请选择": no unit chosen for them
    page.select_option("select[name=organisation]", index=2)
    unit = page.input_value("select[name=organisation]")
    page.fill("input[name=password]", "12345678")  # too common: refused with a clear error
    page.fill("input[name=confirm]", "12345678")
    page.click("form.card button[type=submit]")
    assert page.locator(".invalid-feedback").count() >= 1
    shot(page, "register-refused")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    page.click("form.card button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert "陈佳怡 🌸" in page.locator("header").text_content()
    page.goto(f"{live_server.url}/account")
    shot(page, "account")
    assert axe_violations(page) == []
    assert page.input_value("select[name=organisation]") == unit  # the saved unit, not the first

    # the personal calendar URL: created once, still there after a refresh, and it works
    page.click("form[action$='/account/feed-token'] button[type=submit]")
    page.wait_for_url(f"{live_server.url}/account#calendar-feed")
    url = page.input_value("#feed-url")
    assert "/feeds/" in url
    page.reload()
    assert page.input_value("#feed-url") == url
    page.locator("#calendar-feed").scroll_into_view_if_needed()
    shot(page, "account-calendar-url")
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]  # the URL names the public host; ask the test server
    feed = page.request.get(live_server.url + path)
    assert feed.status == 200
    assert "BEGIN:VCALENDAR" in feed.text()


def test_login_page_in_both_languages(page, live_server):
    page.goto(f"{live_server.url}/auth/login")
    assert axe_violations(page) == []
    shot(page, "login-zh")
    page.click("form.lang-form button")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Log in" in page.inner_text("main h1")
    assert axe_violations(page) == []
    shot(page, "login-en")


def test_wrong_password_and_unknown_email_read_the_same(page, live_server):
    user = live_server.make_user(email=unique_email("login"), display_name="张伟")
    page.goto(f"{live_server.url}/auth/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", "wrong password")
    page.click("form.card button[type=submit]")
    wrong = page.inner_text(".alert-danger")
    page.fill("input[name=email]", unique_email("nobody"))
    page.fill("input[name=password]", "wrong password")
    page.click("form.card button[type=submit]")
    assert page.inner_text(".alert-danger") == wrong
    log_in(page, live_server, user.email)
    assert "张伟" in page.locator("header").text_content()
