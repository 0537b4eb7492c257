"""Store backends, durable execution and the recovering worker."""
