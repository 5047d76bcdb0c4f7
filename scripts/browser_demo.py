"""Drives the demo page in headless Chromium (Debian's chromium + chromedriver, via selenium):
an anonymous session, then a known user; each click must post feedback and the next list must
exclude the clicked item. Writes a screenshot. Prints a JSON summary; exits non-zero on failure.

usage: browser_demo.py BASE_URL USER_ID SCREENSHOT.png
"""
import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, user, shot = sys.argv[1], sys.argv[2], sys.argv[3]
opts = Options()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,900"):
    opts.add_argument(a)
# The Debian driver, never a downloaded one.
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(driver, 30)


def loads():
    return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-loads") or 0)


def wait_loads(n):
    wait.until(lambda d: loads() >= n)


def listed():
    return [li.get_attribute("data-item-id") for li in driver.find_elements(By.CSS_SELECTOR, "#items li")]


def click_first_and_reload():
    before = listed()
    n = loads()
    driver.find_elements(By.CSS_SELECTOR, "#items li")[0].click()
    wait_loads(n + 1)
    after = listed()
    error = driver.find_element(By.ID, "error").text
    assert not error, f"page error: {error}"
    assert before[0] not in after, f"clicked {before[0]} is still listed: {after}"
    assert after != before, "the list did not change"
    return before, after


try:
    driver.get(base + "/")
    wait_loads(1)
    variants = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#variant option")]
    anon_first = listed()
    assert len(anon_first) == 10, f"an anonymous list of 10 renders: {anon_first}"
    strategy = driver.find_element(By.ID, "meta-strategy").text
    _, anon_after = click_first_and_reload()
    session = driver.find_element(By.ID, "session").text
    assert anon_first[0] in session, f"the session shows the click: {session!r}"

    # A known user, on another variant.
    box = driver.find_element(By.ID, "user")
    box.clear()
    box.send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "#variant option[value='blend']").click()
    n = loads()
    driver.find_element(By.CSS_SELECTOR, "#controls button[type='submit']").click()
    wait_loads(n + 1)
    assert driver.find_element(By.ID, "meta-variant").text == "blend"
    user_before, user_after = click_first_and_reload()
    categories = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#items li .cat")]
    sources = [s.text for s in driver.find_elements(By.CSS_SELECTOR, "#items li .src")]
    assert all(categories), f"every item shows its categories: {categories}"
    assert sources, "sources are shown"
    driver.save_screenshot(shot)
    print(json.dumps({
        "variants": variants, "strategy": strategy, "anonymous": [anon_first, anon_after],
        "user": [user_before, user_after], "categories": categories[:3], "sources": sorted(set(sources)),
    }))
finally:
    driver.quit()
