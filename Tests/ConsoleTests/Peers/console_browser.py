#!/usr/bin/env python3
"""Drives Debian's chromium (headless, via chromium-driver and selenium) through the MASH console.

  console_browser.py --url BASE --name N --password P --wrong-password W --confirm-child GIVEN
                     --lpa LPA --downloads DIR --screenshots DIR

Checks that a wrong password and a sign-in form without its CSRF token are refused, signs in,
looks at the overview, confirms the proposed child GIVEN in the review queue, waits for the CSC
request of LPA and downloads its CSV, looks at today's notices and signs out. Saves a screenshot
of each page (checked: a PNG, sensible size, not blank) and prints each path as `SCREENSHOT path`.
Exit 0 when every check holds, 1 with the failed check otherwise.
"""
import argparse
import os
import shutil
import struct
import sys
import time
import zlib

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def fail(message):
    print("FAILED: " + message)
    sys.exit(1)


def png_check(path):
    """A PNG of at least 600x400 whose pixels are not all one colour."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    if width < 600 or height < 400:
        return "too small (%dx%d)" % (width, height)
    idat = b""
    offset = 8
    while offset < len(data):
        length = struct.unpack(">I", data[offset:offset + 4])[0]
        kind = data[offset + 4:offset + 8]
        if kind == b"IDAT":
            idat += data[offset + 8:offset + 8 + length]
        offset += 12 + length
    raw = zlib.decompress(idat)
    distinct = len(set(raw[: min(len(raw), 4_000_000)]))
    if distinct < 16:
        return "blank (only %d distinct byte values)" % distinct
    return None


def next_page_loaded(driver):
    """True once the marked page has been replaced by a new, fully loaded document."""
    try:
        return driver.execute_script(
            "return window.__encompassOldPage === undefined && document.readyState === 'complete'")
    except WebDriverException:
        return False  # the document is changing under the call; ask again


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--wrong-password", required=True)
    parser.add_argument("--confirm-child", required=True)
    parser.add_argument("--lpa", required=True)
    parser.add_argument("--downloads", required=True)
    parser.add_argument("--screenshots", required=True)
    args = parser.parse_args()
    os.makedirs(args.downloads, exist_ok=True)
    os.makedirs(args.screenshots, exist_ok=True)

    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": os.path.abspath(args.downloads),
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(120)
    try:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": os.path.abspath(args.downloads)})
    except WebDriverException:
        pass  # older drivers: the prefs above apply

    def submit(element):
        # Click, then wait for the next page (click again if a loaded machine dropped the first).
        # The old page is marked before the click; errors while it is being replaced are part
        # of the navigation, so the wait polls again (see next_page_loaded).
        driver.execute_script("window.__encompassOldPage = true")
        element.click()
        try:
            WebDriverWait(driver, 20).until(next_page_loaded)
        except TimeoutException:
            try:
                element.click()
            except WebDriverException:
                pass
            WebDriverWait(driver, 90).until(next_page_loaded)

    def screenshot(name):
        path = os.path.join(args.screenshots, name + ".png")
        driver.save_screenshot(path)
        problem = png_check(path)
        if problem:
            fail("screenshot %s: %s" % (path, problem))
        print("SCREENSHOT " + path)

    def sign_in(password, remove_csrf=False):
        driver.get(args.url + "/sign-in")
        driver.find_element(By.ID, "name").send_keys(args.name)
        driver.find_element(By.ID, "password").send_keys(password)
        if remove_csrf:
            driver.execute_script("document.querySelector('input[name=csrf]').remove()")
        submit(driver.find_element(By.ID, "sign-in"))

    try:
        sign_in(args.wrong_password)
        if "not right" not in driver.page_source or driver.find_elements(By.ID, "staff-name"):
            fail("a wrong password was not refused")
        screenshot("1-sign-in-refused")

        sign_in(args.password, remove_csrf=True)
        if driver.find_elements(By.ID, "staff-name") or "did not come from the console" not in driver.page_source:
            fail("a sign-in form without its CSRF token was not refused")

        sign_in(args.password)
        if driver.find_element(By.ID, "staff-name").text != args.name:
            fail("the right password did not sign in")
        cookies = {cookie["name"]: cookie for cookie in driver.get_cookies()}
        session = cookies.get("encompass_console")
        if not session or not session.get("httpOnly") or session.get("sameSite") != "Strict":
            fail("the session cookie is not HttpOnly and SameSite=Strict: %r" % session)
        # On a loaded machine a service may miss the console's timeout once: reload a few times.
        for attempt in range(5):
            stages = driver.find_elements(By.CSS_SELECTOR, "#stages .stage")
            states = [stage.get_attribute("data-state") for stage in stages]
            if len(stages) == 5 and all(state == "up" for state in states):
                break
            if attempt == 4:
                fail("the overview does not show five stages up: %r" % states)
            time.sleep(2)
            driver.refresh()
        screenshot("2-overview")

        submit(driver.find_element(By.ID, "nav-review"))
        rows = [row for row in driver.find_elements(By.CSS_SELECTOR, "tr.proposal") if args.confirm_child in row.find_element(By.CSS_SELECTOR, "td.child").text]
        if not rows:
            fail("no proposal for " + args.confirm_child + " in the review queue")
        screenshot("3-review-queue")
        row = rows[0]
        row.find_element(By.NAME, "note").send_keys("confirmed in selenium")
        submit(row.find_element(By.CSS_SELECTOR, "button[value=confirm]"))
        if "Confirmed" not in driver.find_element(By.ID, "message").text:
            fail("confirming did not say so: " + driver.find_element(By.ID, "message").text)
        screenshot("4-review-confirmed")

        # School resolution files the CSC request once the confirmed child reaches it.
        slug = "".join(ch if ch.isalnum() else "-" for ch in args.lpa.lower())
        deadline = time.time() + 60
        while True:
            submit(driver.find_element(By.ID, "nav-requests"))
            if driver.find_elements(By.ID, "download-csv-" + slug):
                break
            if time.time() > deadline:
                fail("no CSC request for " + args.lpa + " appeared")
            time.sleep(1)
        screenshot("5-csc-requests")
        driver.find_element(By.ID, "download-csv-" + slug).click()
        deadline = time.time() + 60
        downloaded = None
        while downloaded is None:
            done = [name for name in os.listdir(args.downloads) if name.endswith(".csv")]
            if done:
                downloaded = os.path.join(args.downloads, done[0])
            elif time.time() > deadline:
                fail("the CSV did not download into " + args.downloads)
            else:
                time.sleep(0.5)
        with open(downloaded, encoding="utf-8-sig") as handle:
            text = handle.read()
        if "request_id" not in text or args.confirm_child not in text:
            fail("the downloaded sheet does not list the request: " + text[:300])
        print("DOWNLOADED " + downloaded)

        submit(driver.find_element(By.ID, "nav-notices"))
        if not driver.find_elements(By.CSS_SELECTOR, "tr.notice"):
            fail("no notice listed today")
        if "not acknowledged" not in driver.find_element(By.ID, "notices").text:
            fail("today's notice does not show its acknowledgement state")
        screenshot("6-notices-today")

        submit(driver.find_element(By.ID, "sign-out"))
        driver.get(args.url + "/overview")
        if driver.find_elements(By.ID, "staff-name") or not driver.find_elements(By.ID, "sign-in"):
            fail("signing out did not end the session")
    finally:
        driver.quit()
    print("OK")


if __name__ == "__main__":
    main()
