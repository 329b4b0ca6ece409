"""Front ends: programs written in other languages (Tracr's RASP) translated into .hw source."""
