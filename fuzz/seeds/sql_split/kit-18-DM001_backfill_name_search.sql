UPDATE items SET name_search = NULL;
