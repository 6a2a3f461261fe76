# expect: no Metaflow flow found
