"""The Presets page: the team library. page.render() draws it."""
