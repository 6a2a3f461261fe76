SHARED_ENV = {"SHARED": "from-settings"}
