using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using ToMe.Tests.Support;

namespace ToMe.Tests.Serving;

/// <summary>
/// The page at / of the service in a real headless browser (Debian's chromium and chromium-driver, which CI installs):
/// choose an image, see the top-5 and the merge picture, move the r slider and watch tokens, groups and picture change.
/// </summary>
public sealed class BrowserPageTests
{
    private const string Chromium = "/usr/bin/chromium", Driver = "/usr/bin/chromedriver";

    [Fact(Timeout = 120_000)]
    public async Task DropAnImageThenMoveTheSlider()
    {
        if (!File.Exists(Chromium) || !File.Exists(Driver))
            Assert.Skip($"needs {Chromium} and {Driver} (apt-get install chromium chromium-driver)");
        var (app, client) = await ClassifierServiceTests.Start(ServingTestData.LoadEngine(), modelName: "vit_p14_d3");
        await using var _ = app;
        client.Dispose();
        var profile = Directory.CreateTempSubdirectory("tome-chromium-");
        try
        {
            var options = new ChromeOptions { BinaryLocation = Chromium };
            options.AddArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", $"--user-data-dir={profile.FullName}", "--window-size=1200,900");
            var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(Driver)!, Path.GetFileName(Driver));
            service.SuppressInitialDiagnosticInformation = true;
            service.HideCommandPromptWindow = true;
            using var browser = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
            var wait = new WebDriverWait(browser, TimeSpan.FromSeconds(30));
            browser.Navigate().GoToUrl(client.BaseAddress!);
            Assert.Equal("ToMeEngine", browser.Title);
            wait.Until(b => b.FindElement(By.Id("model")).Text.Contains("vit_p14_d3", StringComparison.Ordinal));

            var slider = browser.FindElement(By.Id("r"));
            Assert.Equal("128", slider.GetAttribute("max")); // half of the 256 patches
            browser.FindElement(By.Id("file")).SendKeys(RepoData.Path(Path.Combine("images", "baseline_420_q90.jpg")));
            wait.Until(b => b.FindElements(By.CssSelector("#top5 li")).Count == 5 && b.FindElement(By.Id("visualization")).Displayed);
            var (tokens8, groups8, picture8) = Read(browser);
            Assert.Equal("8", browser.FindElement(By.Id("r-value")).Text);
            Assert.StartsWith("233 of 257", tokens8); // 257 → 249 → 241 → 233 at r = 8 over three blocks
            Assert.StartsWith("data:image/png;base64,", picture8);

            slider.SendKeys(Keys.Home); // r = 0: nothing merges, every patch is its own group
            wait.Until(b => Read(b).Tokens.StartsWith("257 of 257", StringComparison.Ordinal));
            var (_, groups0, picture0) = Read(browser);
            Assert.StartsWith("256 ", groups0);
            Assert.NotEqual(picture8, picture0);

            slider.SendKeys(Keys.End); // the largest r: far fewer tokens and groups
            wait.Until(b => b.FindElement(By.Id("r-value")).Text == "128" && Read(b).Tokens.StartsWith("33 of 257", StringComparison.Ordinal));
            var (_, groupsMax, pictureMax) = Read(browser);
            Assert.True(int.Parse(groupsMax.Split(' ')[0]) < int.Parse(groups8.Split(' ')[0]), $"groups at r = 128: {groupsMax}, at r = 8: {groups8}");
            Assert.NotEqual(picture0, pictureMax);
            Assert.EndsWith(" ms", browser.FindElement(By.Id("time")).Text);
            Assert.False(browser.FindElement(By.Id("error")).Displayed);
        }
        finally
        {
            profile.Delete(recursive: true);
        }
    }

    private static (string Tokens, string Groups, string Picture) Read(IWebDriver browser) =>
        (browser.FindElement(By.Id("tokens")).Text, browser.FindElement(By.Id("groups")).Text,
         browser.FindElement(By.Id("visualization")).GetAttribute("src") ?? "");
}
