"""The History page: past runs. page.render() draws it."""
